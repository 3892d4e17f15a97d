import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { broadcasterConnect, broadcasterJwt, type Reply } from "./broadcaster-client.js";
import { ENGINES } from "./engines.js";
import { appKeyAuth, type FoonyFrame, foonyConnect } from "./foony-client.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldJwt, heraldUrl } from "./herald-client.js";
import {
  connected,
  type PusherFrame,
  pusherClient,
  subscribe as pusherSubscribe,
  rawPusher,
} from "./pusher-client.js";
import { TestClient } from "./ws-client.js";

/**
 * The subscription limit under a burst: twice the limit in subscribes, in
 * one socket write, so every subscribe starts before any has finished. A
 * limit counted on finished subscriptions lets them all through.
 */
const LIMIT = 10;
let n = 0;
const channels = () => {
  n += 1;
  return Array.from({ length: LIMIT * 2 }, (_, i) => `burst${n}-${i}`);
};

/** Waits for one answer per request; resolves with [accepted, refused] answers. */
async function answers<T>(
  c: TestClient,
  count: number,
  isAnswer: (f: T) => boolean,
  accepted: (f: T) => boolean,
): Promise<[T[], T[]]> {
  const got: T[] = [];
  for (let i = 0; i < count; i++) got.push(await c.next<T>(isAnswer));
  return [got.filter(accepted), got.filter((f) => !accepted(f))];
}

describe.each(ENGINES)("subscription limit under a burst of subscribes (%s)", (_name, make) => {
  let gw: TestGateway;
  let stopEngine: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const { engine, stop } = await make();
    stopEngine = stop;
    gw = await startTestGateway({
      engine,
      env: { TIDINGS_MAX_SUBSCRIPTIONS: String(LIMIT), TIDINGS_MAX_MESSAGE_RATE: "10000" },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await stopEngine?.();
  });

  it("herald: exactly the limit subscribe, the rest get rate_limited", async () => {
    const streams = channels();
    const c = await heraldConnect(heraldUrl(gw.url, "burst", streams));
    c.sendBurst(
      streams.map((s, i) => ({ type: "subscribe", ref: `b${i}`, payload: { stream_id: s } })),
    );
    const [ok, refused] = await answers<Frame>(
      c,
      streams.length,
      (f) => typeof f.ref === "string" && f.ref.startsWith("b"),
      (f) => f.type === "subscribed",
    );
    expect(ok).toHaveLength(LIMIT);
    expect(refused.map((f) => [f.type, f.payload.code])).toEqual(
      refused.map(() => ["error", "rate_limited"]),
    );
    c.close();
  });

  it("pusher: exactly the limit subscribe, the rest get subscription_error LimitReached", async () => {
    const names = channels();
    const { c } = await rawPusher(gw);
    c.sendBurst(names.map((channel) => ({ event: "pusher:subscribe", data: { channel } })));
    const [ok, refused] = await answers<PusherFrame>(
      c,
      names.length,
      (f) =>
        f.event === "pusher_internal:subscription_succeeded" ||
        f.event === "pusher:subscription_error",
      (f) => f.event === "pusher_internal:subscription_succeeded",
    );
    expect(ok).toHaveLength(LIMIT);
    expect(refused.map((f) => f.data)).toEqual(
      refused.map(() => expect.objectContaining({ type: "LimitReached", status: 4100 })),
    );
    c.close();
  });

  it("broadcaster: exactly the limit subscribe, the rest get FailedPrecondition", async () => {
    const names = channels();
    const c = await broadcasterConnect(gw.url, broadcasterJwt({ sub: "burst" }));
    c.sendBurst(
      names.map((channel, i) => ({
        id: `b${i}`,
        method: "subscribe",
        params: { channel },
      })),
    );
    const [ok, refused] = await answers<Reply>(
      c,
      names.length,
      (f) => typeof f.requestId === "string" && f.requestId.startsWith("b"),
      (f) => f.result !== undefined,
    );
    expect(ok).toHaveLength(LIMIT);
    expect(refused.map((f) => f.error?.code)).toEqual(refused.map(() => "FailedPrecondition"));
    c.close();
  });

  it("foony: exactly the limit subscribe, the rest get 40001", async () => {
    const names = channels();
    const c = await foonyConnect(gw.url, appKeyAuth("burst"));
    c.sendBurst(names.map((channel, i) => ({ t: "sub", channel, id: 10_000 + i })));
    const [ok, refused] = await answers<FoonyFrame>(
      c,
      names.length,
      (f) => typeof f.id === "number" && f.id >= 10_000 && (f.t === "ack" || f.t === "err"),
      (f) => f.t === "ack",
    );
    expect(ok).toHaveLength(LIMIT);
    expect(refused.map((f) => f.code)).toEqual(refused.map(() => 40001));
    c.close();
  });
});

// The other limits a burst could race: both are checked and taken in one
// synchronous step (the app's connection count at auth, the member count in
// the presence core), and these keep it so.
describe("other limits under concurrency", () => {
  it("admits exactly maxConnections of a connect storm; the rest close with 1013", async () => {
    await using g = await startTestGateway({ env: { TIDINGS_MAX_CONNECTIONS: String(LIMIT) } });
    // JWTs verify asynchronously, so every connection's auth is in flight at once.
    const token = await heraldJwt({ sub: "storm", streams: [] });
    const clients = await Promise.all(
      Array.from({ length: LIMIT * 2 }, () =>
        TestClient.connect(g.url(`/ws?key=${TEST_APP.key}&token=${token}`)),
      ),
    );
    const outcomes = await Promise.all(
      clients.map(async (c) => {
        const f = await c.next<Frame>((x) => x.type === "auth_ok" || x.type === "error");
        return f.type === "auth_ok" ? "in" : (await c.waitClosed()).code;
      }),
    );
    expect(outcomes.filter((o) => o === "in")).toHaveLength(LIMIT);
    expect(outcomes.filter((o) => o !== "in")).toEqual(Array(LIMIT).fill(1013));
    for (const c of clients) c.close();
  });

  it("admits exactly maxPresenceMembers of a burst of presence subscribes", async () => {
    await using g = await startTestGateway({
      env: { TIDINGS_MAX_PRESENCE_MEMBERS: String(LIMIT) },
    });
    const clients = Array.from({ length: LIMIT * 2 }, (_, i) =>
      pusherClient(g, { member: { user_id: `member-${i}` } }),
    );
    try {
      await Promise.all(clients.map(connected));
      const outcomes = await Promise.allSettled(
        clients.map((p) => pusherSubscribe(p, "presence-burst")),
      );
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(LIMIT);
      const refused = outcomes.flatMap((o) =>
        o.status === "rejected" ? [(o.reason as { data: unknown }).data] : [],
      );
      expect(refused).toEqual(
        refused.map(() => expect.objectContaining({ type: "LimitReached", status: 4100 })),
      );
    } finally {
      for (const p of clients) p.disconnect();
    }
  });
});
