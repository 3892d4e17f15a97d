import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../../shared/src/config/load.js";
import { EngineUnavailableError } from "../../../../shared/src/engine/engine.js";
import { MemoryEngine } from "../../../../shared/src/engine/memory.js";
import type { Signal } from "../../../../shared/src/model.js";
import { LocalPresence } from "../../../presence/src/local.js";
import { Blocks } from "../core/blocks.js";
import { createPublish } from "../core/publish.js";
import { STORAGE_UNAVAILABLE } from "../core/session-error.js";
import { createMetrics } from "../metrics.js";
import { ApiError, failureOf } from "./errors.js";
import { ServerApi } from "./server-api.js";

const app = loadConfig({}).apps[0] ?? expect.unreachable("the default config has an app");

function setup() {
  const engine = new MemoryEngine();
  const presence = new LocalPresence({ engine });
  const metrics = createMetrics();
  const api = new ServerApi({
    engine,
    presence,
    publish: createPublish(engine, metrics),
    blocks: new Blocks(engine),
  });
  const join = (channel: string, connectionId: string, userId?: string) =>
    presence.subscribe({
      appId: app.id,
      channel,
      connectionId,
      userId,
      member: userId !== undefined,
      maxMembers: 100,
    });
  const signals = (userId: string) => {
    const seen: Signal[] = [];
    engine.subscribeUser(app.id, userId, (s) => seen.push(s));
    return seen;
  };
  return { engine, presence, metrics, api, join, signals };
}

/** Rejects with the ApiError a route answers with, so the message is checked too. */
async function apiError(p: Promise<unknown> | (() => unknown)) {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error("no ApiError");
}

describe("ServerApi", () => {
  // Every HTTP publish is counted once under its dialect, as client publishes are.
  it("publishes through the one publish path and records its latency once", async () => {
    const { engine, metrics, api } = setup();
    const r = await api.publish(
      app,
      "room",
      { name: "said", data: { text: "hi" } },
      { dialect: "pusher", idempotencyKey: "k1" },
    );
    const again = await api.publish(
      app,
      "room",
      { name: "said", data: { text: "hi" } },
      { dialect: "pusher", idempotencyKey: "k1" },
    );
    expect(again).toMatchObject({ seq: r.seq, duplicate: true });
    const page = await engine.history(app.id, "room", { limit: 10 });
    expect(page.events.map((e) => [e.name, e.data])).toEqual([["said", { text: "hi" }]]);
    const text = await metrics.registry.getSingleMetricAsString("tidings_publish_seconds");
    expect(text).toContain('tidings_publish_seconds_count{dialect="pusher"} 2');
  });

  it("lists occupied channels only, with member counts", async () => {
    const { presence, api, join } = setup();
    await join("presence-room", "c1", "ann");
    await join("presence-room", "c2", "ann");
    await join("news", "c3");
    await join("gone", "c4");
    await presence.unsubscribe(app.id, "gone", "c4");
    const list = await api.channels(app, "");
    expect(list.map((c) => c.channel).sort()).toEqual(["news", "presence-room"]);
    expect(list.find((c) => c.channel === "presence-room")).toMatchObject({
      subscriptionCount: 2,
      userCount: 1,
    });
    expect((await api.channels(app, "presence-")).map((c) => c.channel)).toEqual(["presence-room"]);
  });

  // A user count exists only where membership is tracked; asking elsewhere answers none.
  it("tells occupancy, and a member count only for presence channels when asked", async () => {
    const { api, join } = setup();
    await join("presence-room", "c1", "ann");
    await join("presence-room", "c2", "bob");
    await join("news", "c3", "ann");
    expect(await api.channelInfo(app, "presence-room", { userCount: true })).toEqual({
      occupied: true,
      subscriptionCount: 2,
      userCount: 2,
    });
    expect(await api.channelInfo(app, "presence-room", { userCount: false })).toEqual({
      occupied: true,
      subscriptionCount: 2,
      userCount: undefined,
    });
    expect(await api.channelInfo(app, "news", { userCount: true })).toEqual({
      occupied: true,
      subscriptionCount: 1,
      userCount: undefined,
    });
    expect(await api.channelInfo(app, "empty", { userCount: false })).toMatchObject({
      occupied: false,
      subscriptionCount: 0,
    });
    expect(await apiError(api.channelInfo(app, "#bad", { userCount: false }))).toEqual({
      status: 400,
      message: "Invalid channel name",
    });
  });

  it("lists a presence channel's members and refuses other channels", async () => {
    const { api, join } = setup();
    await join("presence-room", "c1", "ann");
    await join("presence-room", "c2", "ann");
    await join("presence-room", "c3", "bob");
    expect((await api.users(app, "presence-room")).map((m) => m.userId).sort()).toEqual([
      "ann",
      "bob",
    ]);
    expect(await apiError(api.users(app, "news"))).toEqual({
      status: 400,
      message: "Users are only available for presence- channels",
    });
    expect(await apiError(api.users(app, ""))).toEqual({
      status: 400,
      message: "Invalid channel name",
    });
  });

  // Terminate and server-to-user events reach the user's connections whatever their dialect.
  it("signals terminate and user events to the user", async () => {
    const { api, signals } = setup();
    const ann = signals("ann");
    api.sendToUser(app, "ann", { name: "note", data: { n: 1 } });
    api.terminate(app, "ann");
    expect(ann).toEqual([{ kind: "direct", name: "note", data: { n: 1 } }, { kind: "terminate" }]);
    expect(await apiError(() => api.terminate(app, ""))).toEqual({
      status: 400,
      message: "Invalid user id",
    });
    expect(await apiError(() => api.terminate(app, "x".repeat(201)))).toEqual({
      status: 400,
      message: "Invalid user id",
    });
  });

  // A block is stored for connections made later and signalled to those open now.
  it("blocks and unblocks a user in a channel", async () => {
    const { engine, api, signals } = setup();
    const blocks = new Blocks(engine);
    const ann = signals("ann");
    await api.setBlocked(app, "room", "ann", true);
    expect(await blocks.isBlocked(app.id, "room", "ann")).toBe(true);
    await api.setBlocked(app, "room", "ann", false);
    expect(await blocks.isBlocked(app.id, "room", "ann")).toBe(false);
    expect(ann).toEqual([
      { kind: "blocked", channel: "room", blocked: true },
      { kind: "blocked", channel: "room", blocked: false },
    ]);
    expect(await apiError(api.setBlocked(app, "room", "a\nb", true))).toEqual({
      status: 400,
      message: "user_id must be 1-200 characters, no control characters",
    });
    expect(await apiError(api.setBlocked(app, "#x", "ann", true))).toEqual({
      status: 400,
      message: "Invalid channel name",
    });
  });
});

describe("failureOf", () => {
  // One answer to "storage is down" for every HTTP route, and bugs never shown as requests.
  it("tells a caller's mistake, unavailable storage and a bug apart", () => {
    expect(failureOf(new ApiError(404, "nope"))).toEqual({
      kind: "request",
      status: 404,
      message: "nope",
    });
    expect(failureOf(new EngineUnavailableError("down"))).toEqual({
      kind: "unavailable",
      message: STORAGE_UNAVAILABLE,
    });
    expect(failureOf(new Error("bug"))).toEqual({ kind: "internal" });
  });
});
