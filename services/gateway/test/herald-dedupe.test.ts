import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../../../shared/src/engine/engine.js";
import { ENGINES } from "./engines.js";
import { startTestGateway, type TestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import type { TestClient } from "./ws-client.js";

/** What a `ref` deduplicates, on each engine: the key is the engine's, not the gateway's. */
describe.each(ENGINES)("herald publish deduplication on the %s engine", (_name, makeEngine) => {
  let gw: TestGateway;
  let engine: Engine;
  let stopEngine: () => Promise<void>;
  let n = 0;
  beforeAll(async () => {
    ({ engine, stop: stopEngine } = await makeEngine());
    gw = await startTestGateway({ engine });
  });
  afterAll(async () => {
    await gw?.stop();
    await stopEngine?.();
  });

  const unique = (what: string) => `${what}-${++n}-${Math.random().toString(36).slice(2, 8)}`;
  const connect = (user: string, streams: string[]) =>
    heraldConnect(heraldUrl(gw.url, user, streams));
  const publish = (c: TestClient, ref: string | number, stream: string, body: unknown) => {
    c.send({ type: "event.publish", ref, payload: { stream_id: stream, type: "msg", body } });
    return c.next<Frame>((f) => f.ref === ref);
  };
  const bodies = (c: TestClient, stream: string) =>
    c.all<Frame>(isType("event.new", (p) => p.stream_id === stream)).map((f) => f.payload.body);
  const stored = async (stream: string) =>
    (await engine.history("app-id", stream, { afterSeq: 0, limit: 100 })).events.map((e) => e.data);
  /** A marker through the same stream: everything published before it has been delivered. */
  const settle = async (pub: TestClient, sub: TestClient, stream: string) => {
    const mark = unique("mark");
    await request(pub, "event.publish", { stream_id: stream, type: "mark", body: mark });
    await sub.next<Frame>(isType("event.new", (p) => p.body === mark));
  };

  it("stores and delivers the same ref on two streams as two events", async () => {
    const [s1, s2] = [unique("a"), unique("b")];
    const user = unique("u");
    const c = await connect(user, [s1, s2]);
    await request(c, "subscribe", { stream_id: s1 });
    await request(c, "subscribe", { stream_id: s2 });
    const a = await publish(c, 1, s1, "hello");
    const b = await publish(c, 1, s2, "hello");
    expect([a.type, b.type]).toEqual(["event.ack", "event.ack"]);
    expect(b.payload.event_id).not.toBe(a.payload.event_id);
    expect(await stored(s1)).toEqual(["hello"]);
    expect(await stored(s2)).toEqual(["hello"]);
    await c.next<Frame>(isType("event.new", (p) => p.stream_id === s1));
    await c.next<Frame>(isType("event.new", (p) => p.stream_id === s2));
    c.close();
  });

  it("stores a new connection's ref 1 when it carries a different event", async () => {
    const stream = unique("s");
    const user = unique("u");
    const watcher = await connect(unique("w"), [stream]);
    await request(watcher, "subscribe", { stream_id: stream });
    const first = await connect(user, [stream]);
    const a = await publish(first, 1, stream, "before the reconnect");
    first.close();
    // The client's request counter starts again on the new connection.
    const second = await connect(user, [stream]);
    const b = await publish(second, 1, stream, "after the reconnect");
    expect(b.type).toBe("event.ack");
    expect(b.payload.seq as number).toBeGreaterThan(a.payload.seq as number);
    await settle(second, watcher, stream);
    expect(bodies(watcher, stream)).toEqual([
      "before the reconnect",
      "after the reconnect",
      expect.any(String),
    ]);
    expect((await stored(stream)).slice(0, 2)).toEqual([
      "before the reconnect",
      "after the reconnect",
    ]);
    second.close();
    watcher.close();
  });

  it("answers a resend after a reconnect with the first ack, storing and delivering it once", async () => {
    const stream = unique("s");
    const user = unique("u");
    const watcher = await connect(unique("w"), [stream]);
    await request(watcher, "subscribe", { stream_id: stream });
    const first = await connect(user, [stream]);
    const body = { text: "did this get through?" };
    const a = await publish(first, "send-7", stream, body);
    first.close();
    const second = await connect(user, [stream]);
    const again = await publish(second, "send-7", stream, body);
    expect(again).toEqual({ type: "event.ack", ref: "send-7", payload: a.payload });
    // Another user's identical publish under the same ref is that user's own event.
    const other = await connect(unique("v"), [stream]);
    const theirs = await publish(other, "send-7", stream, body);
    expect(theirs.payload.event_id).not.toBe(a.payload.event_id);
    await settle(second, watcher, stream);
    expect(bodies(watcher, stream).slice(0, 2)).toEqual([body, body]);
    expect(bodies(watcher, stream)).toHaveLength(3);
    expect((await stored(stream)).slice(0, 2)).toEqual([body, body]);
    expect(await stored(stream)).toHaveLength(3);
    for (const c of [second, other, watcher]) c.close();
  });
});
