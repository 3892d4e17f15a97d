import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../../shared/src/config/load.js";
import { MemoryEngine } from "../../../shared/src/engine/memory.js";
import { createLogger } from "../../../shared/src/log.js";
import type { PresenceApi } from "../../../shared/src/presence/api.js";
import { expectDefined } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import { LocalPresence } from "../../presence/src/local.js";
import { broadcasterConnect, broadcasterJwt, call } from "./broadcaster-client.js";
import { ChatClient } from "./chat-client.js";
import { appKeyAuth, foonyConnect, req } from "./foony-client.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { heraldConnect, heraldUrl, request } from "./herald-client.js";
import { type PusherFrame, pusherServer, rawPusher } from "./pusher-client.js";
import type { TestClient } from "./ws-client.js";

/** One presence call as the gateway made it: the method and its connection id. */
interface Call {
  method: string;
  connectionId: string | undefined;
  channel: string | undefined;
}

/**
 * The real in-process presence service, with every call the gateway makes
 * written down in order (what the session layer promises is about those
 * calls: which, how many, in what order).
 */
function recordingPresence(inner: PresenceApi, calls: Call[]): PresenceApi {
  const record = (method: string, connectionId?: string, channel?: string) =>
    calls.push({ method, connectionId, channel });
  return {
    subscribe: (sub) => {
      record("subscribe", sub.connectionId, sub.channel);
      return inner.subscribe(sub);
    },
    unsubscribe: (appId, channel, connectionId) => {
      record("unsubscribe", connectionId, channel);
      return inner.unsubscribe(appId, channel, connectionId);
    },
    connectionOpened: (appId, connectionId, userId, watchlist) => {
      record("connectionOpened", connectionId);
      return inner.connectionOpened(appId, connectionId, userId, watchlist);
    },
    setPresence: (change) => {
      record("setPresence", change.connectionId, change.channel);
      return inner.setPresence(change);
    },
    present: (appId, channel) => inner.present(appId, channel),
    presenceSet: (appId, channel) => inner.presenceSet(appId, channel),
    connectionClosed: (appId, connectionId) => {
      record("connectionClosed", connectionId);
      return inner.connectionClosed(appId, connectionId);
    },
    setStatus: (appId, userId, status) => inner.setStatus(appId, userId, status),
    status: (appId, userId) => inner.status(appId, userId),
    members: (appId, channel) => inner.members(appId, channel),
    subscriberCount: (appId, channel) => inner.subscriberCount(appId, channel),
    channels: (appId, prefix) => inner.channels(appId, prefix),
    close: () => inner.close(),
  };
}

let g: TestGateway;
let presence: PresenceApi;
const calls: Call[] = [];
const engine = new MemoryEngine();

beforeAll(async () => {
  const config = loadConfig({ TIDINGS_APPS: JSON.stringify([TEST_APP]) });
  presence = recordingPresence(
    new LocalPresence({ engine, config, log: createLogger("silent", "presence") }),
    calls,
  );
  g = await startTestGateway({ engine, presence });
});
afterAll(async () => {
  await g.stop();
  await presence.close();
  await engine.close();
});

/** Presence calls made for one connection, in order. */
const callsOf = (connectionId: string) =>
  calls.filter((c) => c.connectionId === connectionId).map((c) => c.method);

/** Publishes recorded by `tidings_publish_seconds` for a dialect. */
async function publishesOf(dialect: string): Promise<number> {
  const m = await g.gateway.metrics.publishLatency.get();
  const count = m.values.find(
    (v) => v.metricName === "tidings_publish_seconds_count" && v.labels.dialect === dialect,
  );
  return count?.value ?? 0;
}

/** How the newest event of a channel came in, as stored. */
async function viaOf(channel: string): Promise<string | undefined> {
  const page = await engine.history(TEST_APP.id, channel, { limit: 1 });
  return page.events.at(-1)?.via;
}

async function closeAndSettle(c: TestClient, connectionId: string): Promise<void> {
  c.ws.close();
  await waitFor(() => callsOf(connectionId).includes("connectionClosed"), {
    what: "the close report",
  });
  // Another report would come right behind the first, through the same queue.
  await presence.subscriberCount(TEST_APP.id, "settle");
}

describe("the session layer, in every dialect", () => {
  it("herald: subscribe, publish, close — each reported once, in order", async () => {
    const ch = "sl-herald";
    const c = await heraldConnect(heraldUrl(g.url, "u-herald", [ch]));
    const sub = await request(c, "subscribe", { stream_id: ch });
    expect(sub.type).toBe("subscribed");
    const id = calls.find((x) => x.method === "subscribe" && x.channel === ch)?.connectionId ?? "";
    const before = await publishesOf("herald");
    await request(c, "event.publish", { stream_id: ch, type: "t", body: 1 });
    await request(c, "event.publish", { stream_id: ch, type: "t", body: 2 });
    expect(await publishesOf("herald")).toBe(before + 2);
    expect(await viaOf(ch)).toBe("herald");
    await closeAndSettle(c, id);
    expect(callsOf(id)).toEqual(["connectionOpened", "subscribe", "connectionClosed"]);
  });

  it("herald: an unsubscribe right behind a subscribe ends it, and presence hears them in order", async () => {
    const ch = "sl-herald-race";
    const c = await heraldConnect(heraldUrl(g.url, "u-race", [ch]));
    c.sendBurst([
      { type: "subscribe", ref: "s", payload: { stream_id: ch } },
      { type: "unsubscribe", ref: "u", payload: { stream_id: ch } },
    ]);
    await c.next((f: { type: string }) => f.type === "subscribed");
    await waitFor(async () => (await presence.subscriberCount(TEST_APP.id, ch)) === 0, {
      what: "no subscriber left",
    });
    const id = calls.find((x) => x.method === "subscribe" && x.channel === ch)?.connectionId ?? "";
    await closeAndSettle(c, id);
    expect(callsOf(id)).toEqual([
      "connectionOpened",
      "subscribe",
      "unsubscribe",
      "connectionClosed",
    ]);
  });

  it("pusher: subscribe and close — presence told once each; HTTP publishes counted once", async () => {
    const ch = "sl-pusher";
    const { c } = await rawPusher(g);
    c.send({ event: "pusher:subscribe", data: { channel: ch } });
    await c.next<PusherFrame>((f) => f.event === "pusher_internal:subscription_succeeded");
    const id = calls.find((x) => x.method === "subscribe" && x.channel === ch)?.connectionId ?? "";
    const before = await publishesOf("pusher");
    await pusherServer(g).trigger(ch, "e", "1");
    await pusherServer(g).trigger([ch, "sl-pusher-other"], "e", "2");
    // One publish per channel the event is stored in.
    expect(await publishesOf("pusher")).toBe(before + 3);
    expect(await viaOf(ch)).toBe("pusher http");
    await closeAndSettle(c, id);
    expect(callsOf(id)).toEqual(["subscribe", "connectionClosed"]);
  });

  it("broadcaster: auth, subscribe, publish, close", async () => {
    const ch = "sl-broadcaster";
    const c = await broadcasterConnect(g.url, broadcasterJwt({ sub: "u-bc" }));
    expect((await call(c, "subscribe", { channel: ch })).result).toBeDefined();
    const id = calls.find((x) => x.method === "subscribe" && x.channel === ch)?.connectionId ?? "";
    const before = await publishesOf("broadcaster");
    await call(c, "publish", { channel: ch, event: "e", payload: {} });
    expect(await publishesOf("broadcaster")).toBe(before + 1);
    expect(await viaOf(ch)).toBe("broadcaster");
    await closeAndSettle(c, id);
    expect(callsOf(id)).toEqual(["connectionOpened", "subscribe", "connectionClosed"]);
  });

  it("foony: subscribe, enter presence, publish, close", async () => {
    const ch = "sl-foony";
    const c = await foonyConnect(g.url, appKeyAuth("u-foony"));
    expect((await req(c, { t: "sub", channel: ch })).t).toBe("ack");
    expect((await req(c, { t: "pres", channel: ch, action: "enter" })).t).toBe("ack");
    const id = calls.find((x) => x.method === "subscribe" && x.channel === ch)?.connectionId ?? "";
    const before = await publishesOf("foony");
    await req(c, { t: "pub", channel: ch, name: "e", data: 1 });
    expect(await publishesOf("foony")).toBe(before + 1);
    expect(await viaOf(ch)).toBe("foony");
    await closeAndSettle(c, id);
    expect(callsOf(id)).toEqual(["subscribe", "setPresence", "connectionClosed"]);
  });

  it("chat: online, send, close", async () => {
    const before = await publishesOf("chat");
    const c = await ChatClient.connect(g.url, "u-chat");
    const opened = calls.filter((x) => x.method === "connectionOpened").at(-1);
    const id = opened?.connectionId ?? "";
    await c.ok("new", { chatId: "u-other", message: "hi" });
    expect(await publishesOf("chat")).toBe(before + 1);
    await closeAndSettle(c.ws, id);
    expect(callsOf(id)).toEqual(["connectionOpened", "connectionClosed"]);
  });

  it("a connection that never told presence anything is not reported at close", async () => {
    const { c, socketId } = await rawPusher(g);
    c.ws.close();
    await waitFor(() => c.closed !== undefined, { what: "closed" });
    // A connection that did tell presence, closed after it, is reported: by then
    // a report for the first would have been made.
    const ch = "sl-after";
    const other = await heraldConnect(heraldUrl(g.url, "u-after", [ch]));
    await request(other, "subscribe", { stream_id: ch });
    const id = calls.find((x) => x.method === "subscribe" && x.channel === ch)?.connectionId ?? "";
    await closeAndSettle(other, id);
    expect(callsOf(socketId)).toEqual([]);
  });

  it("a leave cancels exactly the join it finds, not a later join of the same channel", async () => {
    const ch = "presence-sl-attempts";
    const c = await heraldConnect(heraldUrl(g.url, "u-attempts", [ch]));
    const conn = [...g.gateway.server.connections].find((x) => x.userId === "u-attempts");
    const session = expectDefined(conn?.session, "the connection's session");
    // The server side of a real connection, driven directly: each join's plan
    // is held until the test lets it go, the first one's after the second began.
    const gate = () => {
      let open = () => {};
      const shut = new Promise<void>((r) => {
        open = r;
      });
      return { shut, open };
    };
    const one = gate();
    const two = gate();
    const encoder = { encode: () => null };
    const first = session.join(ch, async () => {
      await one.shut;
      return { encoder, presence: { member: true, info: "first" } };
    });
    session.leave(ch);
    const secondJoin = session.join(ch, async () => {
      await two.shut;
      return { encoder, presence: { member: true, info: "second" } };
    });
    one.open();
    await first;
    two.open();
    const second = await secondJoin;
    expect(await first).toBeUndefined();
    expect(second).toBeDefined();
    expect(session.subscribed(ch)).toBe(true);
    expect(await presence.members(TEST_APP.id, ch)).toMatchObject([
      { userId: "u-attempts", info: "second" },
    ]);
    expect(calls.filter((x) => x.method === "subscribe" && x.channel === ch)).toHaveLength(1);
    c.ws.close();
  });
});
