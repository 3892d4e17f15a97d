import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../shared/test/wait.js";
import {
  BIG,
  publishUntilSlowClose,
  SLOW_CONSUMER_ENV,
  startTestGateway,
  TEST_APP,
  type TestGateway,
} from "./harness.js";
import {
  type Frame,
  heraldConnect,
  heraldJwt,
  heraldUrl,
  isType,
  request,
} from "./herald-client.js";
import { TestClient } from "./ws-client.js";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ env: { TIDINGS_MAX_SUBSCRIPTIONS: "5" } });
});
afterAll(async () => {
  await gw?.stop();
});

const connect = (user: string, streams: string[]) =>
  heraldConnect(heraldUrl(gw.url, user, streams));

describe("herald auth", () => {
  it("accepts a compact token and reports the grant", async () => {
    const c = await TestClient.connect(heraldUrl(gw.url, "alice", ["room-1", "room-2"]));
    const ok = await c.next<Frame>(isType("auth_ok"));
    expect(ok.payload).toMatchObject({ user_id: "alice", streams: ["room-1", "room-2"] });
    expect(typeof ok.payload.connection_id).toBe("string");
    expect(ok.payload.expires_at).toBeGreaterThan(Date.now() / 1000);
    c.close();
  });

  it("accepts a JWT with prefix grants, watchlist and user_info", async () => {
    const token = await heraldJwt({ sub: "jo", streams: ["team-*"], watchlist: ["al"] });
    const c = await heraldConnect(gw.url(`/ws?key=${TEST_APP.key}&token=${token}`));
    expect((await request(c, "subscribe", { stream_id: "team-x" })).type).toBe("subscribed");
    expect((await request(c, "subscribe", { stream_id: "other" })).payload.code).toBe("forbidden");
    c.close();
  });

  it.each([
    [
      "a bad signature",
      (u: string) =>
        u.replace(
          /token=[0-9]+\.[0-9a-f]/,
          (m) => `${m.slice(0, -1)}${m.endsWith("0") ? "1" : "0"}`,
        ),
    ],
    ["an unknown key", (u: string) => u.replace(`key=${TEST_APP.key}`, "key=nope")],
    ["a tampered stream list", (u: string) => u.replace("streams=room", "streams=admin")],
    ["a malformed token", (u: string) => u.replace(/token=[^&]+/, "token=zzz")],
  ])("rejects %s with auth_error and close 4001", async (_what, mangle) => {
    const c = await TestClient.connect(mangle(heraldUrl(gw.url, "eve", ["room"])));
    const err = await c.next<Frame>(isType("auth_error"));
    expect(err.payload.code).toBe("auth_failed");
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it("rejects an expired token and a JWT for another user", async () => {
    const expired = await TestClient.connect(heraldUrl(gw.url, "eve", ["room"], { ttlSec: -5 }));
    expect((await expired.next<Frame>(isType("auth_error"))).payload.message).toMatch(/expired/);
    expect((await expired.waitClosed()).code).toBe(4001);
    const token = await heraldJwt({ sub: "jo", streams: [] });
    const other = await TestClient.connect(
      gw.url(`/ws?key=${TEST_APP.key}&user_id=eve&token=${token}`),
    );
    expect((await other.next<Frame>(isType("auth_error"))).payload.code).toBe("auth_failed");
    expect((await other.waitClosed()).code).toBe(4001);
  });

  it("warns before expiry, then closes with 4001 when the token runs out", async () => {
    const c = await TestClient.connect(heraldUrl(gw.url, "short", ["room"], { ttlSec: 2 }));
    await c.next<Frame>(isType("auth_ok"));
    // Under 60 s left: the warning comes right after auth_ok.
    const warn = await c.next<Frame>(isType("system.token_expiring"));
    expect(warn.payload.expires_at).toBeGreaterThan(0);
    const err = await c.next<Frame>(isType("error"), 5000);
    expect(err.payload).toEqual({ code: "auth_failed", message: "token expired" });
    expect((await c.waitClosed()).code).toBe(4001);
  });
});

describe("herald streams and events", () => {
  it("publishes with an ack to the sender and event.new to every subscriber, sender included", async () => {
    const a = await connect("alice", ["chat"]);
    const b = await connect("bob", ["chat"]);
    const subA = await request(a, "subscribe", { stream_id: "chat" });
    expect(subA.payload).toMatchObject({ stream_id: "chat", seq: 0 });
    await request(b, "subscribe", { stream_id: "chat" });
    const ack = await request(a, "event.publish", {
      stream_id: "chat",
      type: "message",
      body: { text: "hi" },
      meta: { k: 1 },
    });
    expect(ack.type).toBe("event.ack");
    expect(ack.payload.event_id).toMatch(/^evt_/);
    for (const c of [a, b]) {
      const ev = await c.next<Frame>(isType("event.new"));
      expect(ev.payload).toMatchObject({
        event_id: ack.payload.event_id,
        stream_id: "chat",
        seq: ack.payload.seq,
        type: "message",
        body: { text: "hi" },
        meta: { k: 1 },
        user_id: "alice",
      });
      expect(new Date(ev.payload.created_at as string).toISOString()).toBe(ev.payload.created_at);
    }
    a.close();
    b.close();
  });

  it("treats a resend under the same ref as a retry: the first ack, nothing delivered twice", async () => {
    const a = await connect("alice", ["idem"]);
    await request(a, "subscribe", { stream_id: "idem" });
    const frame = {
      type: "event.publish",
      ref: "same",
      payload: { stream_id: "idem", type: "t", body: 1 },
    };
    a.send(frame);
    const first = await a.next<Frame>((f) => f.ref === "same");
    a.send(frame);
    const second = await a.next<Frame>((f) => f.ref === "same");
    expect(second.payload).toEqual(first.payload);
    await request(a, "event.publish", { stream_id: "idem", type: "t", body: 3 });
    await a.next<Frame>(isType("event.new", (p) => p.body === 3));
    expect(a.all<Frame>(isType("event.new")).map((f) => f.payload.body)).toEqual([1, 3]);
    a.close();
  });

  it("replays what a client missed after last_seq, then goes live without duplicates", async () => {
    const pub = await connect("pub", ["replay"]);
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) {
      seqs.push(
        (await request(pub, "event.publish", { stream_id: "replay", type: "n", body: i })).payload
          .seq as number,
      );
    }
    const c = await connect("late", ["replay"]);
    const sub = await request(c, "subscribe", { stream_id: "replay", last_seq: seqs[1] });
    expect(sub.payload).toMatchObject({ seq: seqs[4] });
    expect(sub.payload.replay).toBeUndefined();
    await request(pub, "event.publish", { stream_id: "replay", type: "n", body: 5 });
    await c.next<Frame>(isType("event.new", (p) => p.body === 5));
    expect(c.all<Frame>(isType("event.new")).map((f) => f.payload.body)).toEqual([2, 3, 4, 5]);
    pub.close();
    c.close();
  });

  it("says replay: truncated when the missed events left history", async () => {
    await using small = await startTestGateway({ env: { TIDINGS_HISTORY_PER_CHANNEL: "2" } });
    const pub = await heraldConnect(heraldUrl(small.url, "p", ["t"]));
    for (let i = 0; i < 4; i++)
      await request(pub, "event.publish", { stream_id: "t", type: "n", body: i });
    const c = await heraldConnect(heraldUrl(small.url, "c", ["t"]));
    const sub = await request(c, "subscribe", { stream_id: "t", last_seq: 0 });
    expect(sub.payload.replay).toBe("truncated");
    await c.next<Frame>(isType("event.new", (p) => p.body === 3));
    expect(c.all<Frame>(isType("event.new")).map((f) => f.payload.body)).toEqual([2, 3]);
    pub.close();
    c.close();
  });

  it("stops delivery after unsubscribe", async () => {
    const a = await connect("alice", ["u1"]);
    const b = await connect("bob", ["u1"]);
    await request(a, "subscribe", { stream_id: "u1" });
    await request(b, "subscribe", { stream_id: "u1" });
    b.send({ type: "unsubscribe", payload: { stream_id: "u1" } });
    // ping is answered in order, so the unsubscribe has been processed after the pong.
    expect((await request(b, "ping", {})).type).toBe("pong");
    await request(a, "event.publish", { stream_id: "u1", type: "n", body: "after" });
    await a.next<Frame>(isType("event.new"));
    expect((await request(b, "ping", {})).type).toBe("pong");
    expect(b.all<Frame>(isType("event.new"))).toEqual([]);
    a.close();
    b.close();
  });

  it("sends event.trigger to every other subscriber, not the sender, and stores nothing", async () => {
    const a = await connect("alice", ["eph"]);
    const b = await connect("bob", ["eph"]);
    await request(a, "subscribe", { stream_id: "eph" });
    await request(b, "subscribe", { stream_id: "eph" });
    a.send({
      type: "event.trigger",
      payload: { stream_id: "eph", type: "cursor_move", body: { x: 1 } },
    });
    const ev = await b.next<Frame>(isType("event.new"));
    expect(ev.payload).toEqual({
      stream_id: "eph",
      type: "cursor_move",
      body: { x: 1 },
      user_id: "alice",
      ephemeral: true,
    });
    expect((await request(a, "ping", {})).type).toBe("pong");
    expect(a.all<Frame>(isType("event.new"))).toEqual([]);
    const batch = await request(a, "events.fetch", { stream_id: "eph" });
    expect(batch.payload.events).toEqual([]);
    a.close();
    b.close();
  });

  it("fetches history by seq range with has_more", async () => {
    const a = await connect("alice", ["hist"]);
    const seqs: number[] = [];
    for (let i = 0; i < 7; i++) {
      seqs.push(
        (await request(a, "event.publish", { stream_id: "hist", type: "n", body: i })).payload
          .seq as number,
      );
    }
    const latest = await request(a, "events.fetch", { stream_id: "hist", limit: 3 });
    expect(latest.type).toBe("events.batch");
    expect((latest.payload.events as Frame["payload"][]).map((e) => e.body)).toEqual([4, 5, 6]);
    expect(latest.payload.has_more).toBe(true);
    const after = await request(a, "events.fetch", {
      stream_id: "hist",
      after_seq: seqs[4],
      limit: 10,
    });
    expect((after.payload.events as Frame["payload"][]).map((e) => e.body)).toEqual([5, 6]);
    expect(after.payload.has_more).toBe(false);
    const before = await request(a, "events.fetch", { stream_id: "hist", before_seq: seqs[2] });
    expect((before.payload.events as Frame["payload"][]).map((e) => e.body)).toEqual([0, 1]);
    expect(before.payload.has_more).toBe(false);
    expect(
      (await request(a, "events.fetch", { stream_id: "hist", limit: 1001 })).payload.code,
    ).toBe("invalid_payload");
    a.close();
  });

  it("stores cursors per user and stream and tells the other connections", async () => {
    const a = await connect("alice", ["cur"]);
    const a2 = await connect("alice", ["cur"]);
    const b = await connect("bob", ["cur"]);
    for (const c of [a, a2, b]) await request(c, "subscribe", { stream_id: "cur" });
    a.send({ type: "cursor.update", payload: { stream_id: "cur", seq: 42 } });
    for (const c of [a2, b]) {
      expect((await c.next<Frame>(isType("cursor.moved"))).payload).toEqual({
        stream_id: "cur",
        user_id: "alice",
        seq: 42,
      });
    }
    expect((await request(a, "ping", {})).type).toBe("pong");
    expect(a.all<Frame>(isType("cursor.moved"))).toEqual([]);
    const again = await connect("alice", ["cur"]);
    expect((await request(again, "subscribe", { stream_id: "cur" })).payload.cursor).toBe(42);
    for (const c of [a, a2, b, again]) c.close();
  });

  it("relays typing and expires a start without a stop after 5 s", async () => {
    const a = await connect("alice", ["typ"]);
    const b = await connect("bob", ["typ"]);
    await request(a, "subscribe", { stream_id: "typ" });
    await request(b, "subscribe", { stream_id: "typ" });
    a.send({ type: "typing.start", payload: { stream_id: "typ" } });
    expect((await b.next<Frame>(isType("typing"))).payload).toEqual({
      stream_id: "typ",
      user_id: "alice",
      active: true,
    });
    a.send({ type: "typing.stop", payload: { stream_id: "typ" } });
    expect((await b.next<Frame>(isType("typing"))).payload.active).toBe(false);
    const started = Date.now();
    a.send({ type: "typing.start", payload: { stream_id: "typ" } });
    await b.next<Frame>(isType("typing", (p) => p.active === true));
    expect((await b.next<Frame>(isType("typing"), 8000)).payload.active).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4500);
    a.close();
    b.close();
  });

  it("counts reactions per emoji and refuses unknown events", async () => {
    const a = await connect("alice", ["rx"]);
    const b = await connect("bob", ["rx"]);
    await request(a, "subscribe", { stream_id: "rx" });
    const ack = await request(a, "event.publish", { stream_id: "rx", type: "m", body: "x" });
    const event_id = ack.payload.event_id;
    a.send({ type: "reaction.add", payload: { stream_id: "rx", event_id, emoji: "👍" } });
    expect((await a.next<Frame>(isType("reaction.changed"))).payload).toEqual({
      stream_id: "rx",
      event_id,
      emoji: "👍",
      user_id: "alice",
      action: "add",
      count: 1,
    });
    b.send({ type: "reaction.add", payload: { stream_id: "rx", event_id, emoji: "👍" } });
    expect((await a.next<Frame>(isType("reaction.changed"))).payload).toMatchObject({
      user_id: "bob",
      count: 2,
    });
    b.send({ type: "reaction.remove", payload: { stream_id: "rx", event_id, emoji: "👍" } });
    expect((await a.next<Frame>(isType("reaction.changed"))).payload).toMatchObject({
      action: "remove",
      count: 1,
    });
    const missing = await request(a, "reaction.add", {
      stream_id: "rx",
      event_id: "evt_999999",
      emoji: "x",
    });
    expect(missing.payload.code).toBe("not_found");
    a.close();
    b.close();
  });

  it("redelivers unacked events to an at-least-once subscriber, never acked ones", async () => {
    const pub = await connect("pub", ["alo"]);
    const c1 = await connect("carol", ["alo"]);
    await request(c1, "subscribe", { stream_id: "alo", delivery: "at_least_once" });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(
        (await request(pub, "event.publish", { stream_id: "alo", type: "n", body: i })).payload
          .event_id as string,
      );
    }
    await c1.next<Frame>(isType("event.new", (p) => p.body === 3));
    c1.send({ type: "event.ack", payload: { stream_id: "alo", event_id: ids[0] } });
    c1.send({ type: "event.ack", payload: { stream_id: "alo", event_id: ids[2] } });
    await request(c1, "ping", {});
    c1.close();
    await c1.waitClosed();
    await request(pub, "event.publish", { stream_id: "alo", type: "n", body: 4 });
    const c2 = await connect("carol", ["alo"]);
    await request(c2, "subscribe", { stream_id: "alo", delivery: "at_least_once" });
    await c2.next<Frame>(isType("event.new", (p) => p.body === 4));
    expect(c2.all<Frame>(isType("event.new")).map((f) => f.payload.body)).toEqual([1, 3, 4]);
    pub.close();
    c2.close();
  });
});

describe("herald errors and limits", () => {
  it("answers bad requests with invalid_payload and keeps the connection", async () => {
    const c = await connect("alice", ["room"]);
    const cases: [unknown, string | undefined][] = [
      ["not json", undefined],
      ["[1,2]", undefined],
      [{ type: "nope", ref: "a" }, "a"],
      [{ type: 7, ref: "b" }, "b"],
      [{ type: "subscribe", ref: "c", payload: { stream_id: 5 } }, "c"],
      [{ type: "subscribe", ref: "d", payload: { stream_id: "bad name!" } }, "d"],
      [{ type: "subscribe", ref: "e", payload: { stream_id: "room", last_seq: -1 } }, "e"],
      [{ type: "event.publish", ref: "f", payload: { stream_id: "room", type: "t" } }, "f"],
      [{ type: "presence.set", ref: "g", payload: { status: "asleep" } }, "g"],
      [{ type: "ping", ref: { no: 1 } }, undefined],
    ];
    for (const [frame, ref] of cases) {
      c.send(typeof frame === "string" ? frame : JSON.stringify(frame));
      const err = await c.next<Frame>(isType("error"));
      expect(err.payload.code).toBe("invalid_payload");
      expect(err.ref).toBe(ref);
    }
    expect((await request(c, "ping", {})).type).toBe("pong");
    c.close();
  });

  it("refuses streams outside the token with forbidden", async () => {
    const c = await connect("alice", ["mine"]);
    expect((await request(c, "subscribe", { stream_id: "theirs" })).payload.code).toBe("forbidden");
    expect(
      (await request(c, "event.publish", { stream_id: "theirs", type: "t", body: 1 })).payload.code,
    ).toBe("forbidden");
    expect((await request(c, "events.fetch", { stream_id: "theirs" })).payload.code).toBe(
      "forbidden",
    );
    c.close();
  });

  it("limits subscriptions per connection", async () => {
    const streams = ["s1", "s2", "s3", "s4", "s5", "s6"];
    const c = await connect("alice", streams);
    for (const s of streams.slice(0, 5))
      expect((await request(c, "subscribe", { stream_id: s })).type).toBe("subscribed");
    expect((await request(c, "subscribe", { stream_id: "s6" })).payload.code).toBe("rate_limited");
    c.close();
  });

  it("answers frames over the size limit, and invalid UTF-8, without closing", async () => {
    const c = await connect("alice", ["room"]);
    c.send(JSON.stringify({ type: "ping", payload: { pad: "x".repeat(70_000) } }));
    expect((await c.next<Frame>(isType("error"))).payload).toMatchObject({
      code: "invalid_payload",
      message: "frame too large",
    });
    c.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), true);
    expect((await c.next<Frame>(isType("error"))).payload.message).toMatch(/UTF-8/);
    expect((await request(c, "ping", {})).type).toBe("pong");
    // A *text* frame that is not UTF-8 fails the connection, as RFC 6455 requires;
    // the server and everyone else carry on.
    const bad = await connect("bad", ["room"]);
    bad.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false);
    await bad.waitClosed();
    expect((await request(c, "ping", {})).type).toBe("pong");
    c.close();
  });

  it("rate limits a flooding connection with rate_limited", async () => {
    await using limited = await startTestGateway({ env: { TIDINGS_MAX_MESSAGE_RATE: "5" } });
    const c = await heraldConnect(heraldUrl(limited.url, "flood", ["r"]));
    for (let i = 0; i < 30; i++) c.send({ type: "ping", ref: i, payload: {} });
    const err = await c.next<Frame>(isType("error"));
    expect(err.payload.code).toBe("rate_limited");
    c.close();
  });

  it("survives thousands of random and malformed frames and keeps serving others", async () => {
    const victim = await connect("fuzz", ["f"]);
    const bystander = await connect("ok", ["f"]);
    await request(bystander, "subscribe", { stream_id: "f" });
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const valid = JSON.stringify({
      type: "event.publish",
      ref: "x",
      payload: { stream_id: "f", type: "t", body: { a: [1, 2] } },
    });
    const types = [
      "subscribe",
      "event.publish",
      "events.fetch",
      "reaction.add",
      "cursor.update",
      "typing.start",
      "x",
    ];
    for (let i = 0; i < 3000; i++) {
      const r = rand();
      if (r < 0.3) victim.send(valid.slice(0, Math.floor(rand() * valid.length)));
      else if (r < 0.6) {
        const bytes = Buffer.alloc(1 + Math.floor(rand() * 64));
        for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rand() * 256);
        victim.sendRaw(bytes, rand() < 0.5);
      } else {
        const payload: Record<string, unknown> = {};
        for (const k of [
          "stream_id",
          "type",
          "body",
          "seq",
          "last_seq",
          "limit",
          "event_id",
          "emoji",
        ]) {
          if (rand() < 0.5)
            payload[k] = [null, 1, -1, "f", "", {}, [], "x".repeat(300), 1e308][
              Math.floor(rand() * 9)
            ];
        }
        victim.send({ type: types[Math.floor(rand() * types.length)], ref: i, payload });
      }
    }
    await waitFor(async () => victim.closed !== undefined || victim.frames.length > 100);
    const ack = await request(bystander, "event.publish", {
      stream_id: "f",
      type: "t",
      body: "still here",
    });
    expect(ack.type).toBe("event.ack");
    await bystander.next<Frame>(isType("event.new", (p) => p.body === "still here"));
    const fresh = await connect("new", ["f"]);
    expect((await request(fresh, "ping", {})).type).toBe("pong");
    victim.close();
    bystander.close();
    fresh.close();
  });

  // Events under 1/16 of the 64 KiB limit are checked only as a channel's
  // sends add up. Published this fast, a check that never came would leave
  // the close to uWS's hard stop (1006, no slow-consumer close counted) well
  // within the server's 1 s sweep, in most runs.
  it.each([
    { events: "100 KB events", body: BIG, max: 2000 },
    { events: "3 KB events", body: "s".repeat(3000), max: 20_000 },
  ])(
    "closes a consumer that stops reading with 4008 instead of dropping its events ($events)",
    async ({ body, max }) => {
      await using small = await startTestGateway({ env: SLOW_CONSUMER_ENV });
      const slow = await heraldConnect(heraldUrl(small.url, "slow", ["big"]));
      await request(slow, "subscribe", { stream_id: "big" });
      // Stop reading: the kernel buffers fill, then the gateway's queue grows.
      slow.pauseReading();
      const pub = await heraldConnect(heraldUrl(small.url, "pub", ["big"]));
      const publish = () => request(pub, "event.publish", { stream_id: "big", type: "n", body });
      expect(await publishUntilSlowClose(small, publish, max)).toBe(true);
      slow.resumeReading();
      expect((await slow.waitClosed()).code).toBe(4008);
      pub.close();
    },
  );
});

describe("herald http", () => {
  it("serves health, readiness and metrics", async () => {
    expect((await fetch(gw.http("/healthz"))).status).toBe(200);
    const ready = await fetch(gw.http("/readyz"));
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(gw.http("/metrics"))).text();
    expect(metrics).toMatch(/tidings_connections\{/);
    expect(metrics).toMatch(/tidings_messages_in_total\{app="app-id",dialect="herald"\}/);
    expect(metrics).toMatch(/tidings_errors_total\{dialect="herald",code="invalid_payload"\}/);
    expect(metrics).toMatch(/tidings_publish_seconds_bucket/);
  });
});
