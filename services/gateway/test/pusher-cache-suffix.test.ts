import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINES, type TestEngine } from "./engines.js";
import { startTestGateway, type TestGateway } from "./harness.js";
import {
  dataOf,
  isEvent,
  type PusherFrame,
  postJson,
  pusherServer,
  rawPusher,
} from "./pusher-client.js";

/** The server SDK's trigger() refuses `#` in channel names; its signed post() does not. */
const trigger = async (channel: string, name: string, data: unknown) => {
  const res = await postJson(pusherServer(gw), "/events", {
    name,
    channels: [channel],
    data: JSON.stringify(data),
  });
  expect(res.status).toBe(200);
};

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
});

// The seed's suffix form (`name#cache`) behaves like the `cache-` prefix channels.
describe("pusher #cache suffix channels", () => {
  it("answers pusher:cache_miss on an empty channel, then sends the last event on subscribe", async () => {
    const { c: first } = await rawPusher(gw);
    first.send({ event: "pusher:subscribe", data: { channel: "scores#cache" } });
    await first.next<PusherFrame>(
      isEvent("pusher_internal:subscription_succeeded", "scores#cache"),
    );
    await first.next<PusherFrame>(isEvent("pusher:cache_miss", "scores#cache"));
    first.close();

    await trigger("scores#cache", "score", { n: 1 });
    await trigger("scores#cache", "score", { n: 2 });
    const { c } = await rawPusher(gw);
    c.send({ event: "pusher:subscribe", data: { channel: "scores#cache" } });
    await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", "scores#cache"));
    expect(dataOf(await c.next<PusherFrame>(isEvent("score", "scores#cache")))).toEqual({ n: 2 });
    // Only the newest event is replayed, and no cache_miss comes with it.
    await trigger("scores#cache", "marker", {});
    await c.next<PusherFrame>(isEvent("marker", "scores#cache"));
    expect(c.all<PusherFrame>(isEvent("score"))).toHaveLength(1);
    expect(c.all<PusherFrame>(isEvent("pusher:cache_miss"))).toHaveLength(0);
    c.close();
  });
});

// Where a subscription goes live is a position, not a count: on JetStream an
// empty channel of an app with events elsewhere goes live above 0. A cache
// miss is an empty cache, not a zero position.
describe.each(ENGINES)("pusher cache channels on %s", (_name, make) => {
  let te: TestEngine;
  let on: TestGateway;
  beforeAll(async () => {
    te = await make();
    on = await startTestGateway({ engine: te.engine });
  });
  afterAll(async () => {
    await on?.stop();
    await te?.stop();
  });

  it("answers pusher:cache_miss on an empty cache channel of an app with events elsewhere", async () => {
    const res = await postJson(pusherServer(on), "/events", {
      name: "x",
      channels: ["elsewhere"],
      data: "{}",
    });
    expect(res.status).toBe(200);
    // A channel the gateway follows, so the app's live feed runs.
    const { c: holder } = await rawPusher(on);
    holder.send({ event: "pusher:subscribe", data: { channel: "holder" } });
    await holder.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", "holder"));
    const { c } = await rawPusher(on);
    c.send({ event: "pusher:subscribe", data: { channel: "cache-empty" } });
    await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", "cache-empty"));
    await c.next<PusherFrame>(isEvent("pusher:cache_miss", "cache-empty"));
    // And a cache channel with an event hands it over instead.
    const sent = await postJson(pusherServer(on), "/events", {
      name: "score",
      channels: ["cache-full"],
      data: JSON.stringify({ goals: 1 }),
    });
    expect(sent.status).toBe(200);
    c.send({ event: "pusher:subscribe", data: { channel: "cache-full" } });
    const last = await c.next<PusherFrame>(isEvent("score", "cache-full"));
    expect(dataOf(last)).toEqual({ goals: 1 });
    expect(c.all<PusherFrame>(isEvent("pusher:cache_miss"))).toHaveLength(1);
    c.close();
    holder.close();
  });
});
