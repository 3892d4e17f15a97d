/**
 * The SDK against a real in-process gateway (memory engine): connection
 * life, streams, publish, history, at-least-once and the small helpers.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  startTestGateway,
  TEST_APP,
  type TestGateway,
} from "../../../services/gateway/test/harness.js";
import { waitFor } from "../../test/wait.js";
import {
  AuthError,
  type ConnectionState,
  type DisconnectedInfo,
  HeraldError,
  type Member,
  QueueFullError,
} from "../src/index.js";
import { client, closeClients, collect, dropUser, grant, nextEmit, unique } from "./helpers.js";

let gw: TestGateway;
let ws: string;
beforeAll(async () => {
  gw = await startTestGateway();
  ws = gw.url("/ws");
});
afterEach(closeClients);
afterAll(async () => {
  await gw?.stop();
});

describe("connection", () => {
  it("reports connecting and connected, then reconnects after the gateway closes it", async () => {
    const user = unique("u");
    const c = client(ws, user, []);
    const states: ConnectionState[] = [];
    c.on("state", (s) => {
      states.push(s);
    });
    const reconnecting: { attempt: number; delay: number }[] = [];
    c.on("reconnecting", (r) => {
      reconnecting.push(r);
    });
    const disconnected: DisconnectedInfo[] = [];
    c.on("disconnected", (d) => {
      disconnected.push(d);
    });
    const [first] = await nextEmit(c, "connected");
    expect(first.user_id).toBe(user);
    expect(dropUser(gw, user)).toBe(1);
    const [second] = await nextEmit(c, "connected");
    expect(second.connection_id).not.toBe(first.connection_id);
    expect(states).toEqual([
      "connecting",
      "connected",
      "disconnected",
      "reconnecting",
      "connecting",
      "connected",
    ]);
    expect(disconnected).toEqual([
      expect.objectContaining({ code: 1012, willRetry: true, reason: "test closes it" }),
    ]);
    expect(reconnecting).toEqual([{ attempt: 1, delay: expect.any(Number) }]);
    c.close();
    expect(c.state).toBe("closed");
  });

  it("stops with an AuthError on an unknown key, without retrying", async () => {
    const c = client(ws, unique("u"), [], { key: "no-such-key" });
    let connecting = 0;
    c.on("connecting", () => {
      connecting++;
    });
    const [closed] = await nextEmit(c, "closed");
    expect(closed.error).toBeInstanceOf(AuthError);
    expect(closed.error?.message).toMatch(/unknown key/);
    expect(connecting).toBe(1);
    await expect(c.publish("x", "t", 1)).rejects.toThrow(/closed/);
  });

  it("stops when a freshly fetched token is refused again (bad secret)", async () => {
    const user = unique("u");
    let calls = 0;
    const c = client(ws, user, [], {
      token: () => {
        calls++;
        return {
          ...grant(user, []),
          token: `${Math.floor(Date.now() / 1000) + 60}.${"0".repeat(64)}`,
        };
      },
    });
    const disconnected: DisconnectedInfo[] = [];
    c.on("disconnected", (d) => {
      disconnected.push(d);
    });
    const [closed] = await nextEmit(c, "closed");
    expect(closed.error).toBeInstanceOf(AuthError);
    expect(closed.error?.message).toMatch(/bad signature/);
    expect(calls).toBe(2);
    expect(disconnected.map((d) => [d.code, d.willRetry])).toEqual([
      [4001, true],
      [4001, false],
    ]);
  });

  it("refreshes the token on system.token_expiring without a disconnect, losing nothing", async () => {
    const user = unique("u");
    const room = unique("room");
    let calls = 0;
    // The first token has under 60 s left, so the gateway warns at once.
    const c = client(ws, user, [room], {
      token: () => grant(user, [room], ++calls === 1 ? 30 : 3600),
    });
    const s = c.subscribe(room);
    const seen = collect(s);
    const connections: string[] = [];
    c.on("connected", (i) => {
      connections.push(i.connection_id);
    });
    let disconnects = 0;
    c.on("disconnected", () => {
      disconnects++;
    });
    await s.ready;
    const pub = client(ws, unique("p"), [room]);
    const publishing = (async () => {
      for (let i = 1; i <= 40; i++) await pub.publish(room, "n", i);
    })();
    await waitFor(() => connections.length >= 2, { what: "the refreshed connection" });
    await publishing;
    await waitFor(() => seen.length >= 40, { what: "40 events" });
    expect(calls).toBe(2);
    expect(disconnects).toBe(0);
    expect(seen.map((e) => e.body)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(c.info?.expires_at).toBeGreaterThan(Date.now() / 1000 + 3000);
  });

  it("reconnects at once with a fresh token after an expired-token close", async () => {
    const user = unique("u");
    const room = unique("room");
    let calls = 0;
    const c = client(ws, user, [room], {
      token: () => {
        calls++;
        // The refresh fails, so the 2 s token really expires and the gateway closes with 4001.
        if (calls === 2) throw new Error("backend briefly down");
        return grant(user, [room], calls === 1 ? 2 : 3600);
      },
    });
    const errors: Error[] = [];
    c.on("error", (e) => {
      errors.push(e);
    });
    const disconnected: DisconnectedInfo[] = [];
    c.on("disconnected", (d) => {
      disconnected.push(d);
    });
    const delays: number[] = [];
    c.on("reconnecting", (r) => {
      delays.push(r.delay);
    });
    const connections: string[] = [];
    c.on("connected", (i) => {
      connections.push(i.connection_id);
    });
    const s = c.subscribe(room);
    const seen = collect(s);
    await waitFor(() => connections.length === 2, { what: "the connection after expiry" });
    expect(disconnected).toEqual([expect.objectContaining({ code: 4001, willRetry: true })]);
    expect(disconnected[0]?.reason).toMatch(/token expired/);
    expect(delays).toEqual([0]);
    expect(errors.map((e) => e.message)).toEqual(["backend briefly down"]);
    await client(ws, unique("p"), [room]).publish(room, "n", 1);
    await waitFor(() => seen.length === 1, { what: "the event after the reconnect" });
    expect(calls).toBe(3);
  });
});

describe("streams", () => {
  it("resubscribes after a reconnect and delivers every event once, in order", async () => {
    const room = unique("room");
    const user = unique("u");
    const c = client(ws, user, [room]);
    const s = c.subscribe(room);
    const seen = collect(s);
    await s.ready;
    const pub = client(ws, unique("p"), [room]);
    const total = 60;
    let dropped = 0;
    for (let i = 1; i <= total; i++) {
      await pub.publish(room, "n", i);
      // Cut the subscriber off twice while events flow (the second time once it is back).
      if (i === 40) await waitFor(() => c.connected, { what: "the first reconnect" });
      if (i === 15 || i === 40) dropped += dropUser(gw, user);
    }
    expect(dropped).toBe(2);
    await waitFor(() => seen.length >= total, { what: `${total} events` });
    expect(seen.map((e) => e.body)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const seqs = seen.map((e) => e.seq);
    expect(new Set(seqs).size).toBe(total);
    expect(s.lastSeq).toBe(seqs[seqs.length - 1]);
  });

  it("publishes with {event_id, seq}; a publish made offline is sent once connected", async () => {
    const room = unique("room");
    const c = client(ws, unique("u"), [room], { autoConnect: false, maxQueued: 2 });
    const first = c.publish(room, "m", { text: "one" });
    const second = c.publish(room, "m", { text: "two" });
    await expect(c.publish(room, "m", { text: "three" })).rejects.toBeInstanceOf(QueueFullError);
    expect(c.pendingPublishes).toBe(2);
    c.connect();
    const [a, b] = await Promise.all([first, second]);
    expect(a.event_id).toMatch(/^evt_/);
    expect(b.seq).toBeGreaterThan(a.seq);
    const page = await c.subscribe(room).fetch({ after_seq: 0, limit: 10 });
    expect(page.events.map((e) => e.body)).toEqual([{ text: "one" }, { text: "two" }]);
    expect(c.pendingPublishes).toBe(0);
  });

  it("rejects a publish that got the connection closed as too large (1009) instead of resending it forever", async () => {
    await using small = await startTestGateway({ env: { TIDINGS_MAX_FRAME_BYTES: "1024" } });
    const room = unique("room");
    const c = client(small.url("/ws"), unique("u"), [room]);
    const closes: (number | undefined)[] = [];
    c.on("disconnected", (d) => {
      closes.push(d.code);
    });
    await c.subscribe(room).ready;
    await expect(c.publish(room, "big", "x".repeat(8000))).rejects.toMatchObject({
      code: "invalid_payload",
    });
    await waitFor(() => c.connected, { what: "the reconnect" });
    expect((await c.publish(room, "small", 1)).seq).toBeGreaterThan(0);
    expect(closes).toEqual([1009]);
    closeClients();
  });

  it("refuses a stream outside the token with a forbidden error; the connection stays", async () => {
    const room = unique("room");
    const c = client(ws, unique("u"), [room]);
    const bad = c.subscribe(unique("other"));
    const errors: Error[] = [];
    bad.on("error", (e) => {
      errors.push(e);
    });
    await expect(bad.ready).rejects.toMatchObject({ code: "forbidden" });
    expect(bad.status).toBe("failed");
    expect(errors[0]).toBeInstanceOf(HeraldError);
    await expect(c.publish(unique("other"), "t", 1)).rejects.toMatchObject({ code: "forbidden" });
    const ok = c.subscribe(room);
    await ok.ready;
    expect(c.state).toBe("connected");
  });

  it("says 'missed events' when the replay was truncated, then delivers what is left", async () => {
    await using small = await startTestGateway({ env: { TIDINGS_HISTORY_PER_CHANNEL: "20" } });
    const ws = small.url("/ws");
    const room = unique("room");
    const pub = client(ws, unique("p"), [room]);
    for (let i = 1; i <= 25; i++) await pub.publish(room, "n", i);
    const c = client(ws, unique("u"), [room]);
    const s = c.subscribe(room, { fromSeq: 0 });
    const seen = collect(s);
    const [missed] = await nextEmit(s, "missed");
    expect(missed).toMatchObject({ stream_id: room, reason: "truncated", lastSeq: 0 });
    await waitFor(() => seen.length === 20, { what: "the 20 events history keeps" });
    expect(seen.map((e) => e.body)).toEqual(Array.from({ length: 20 }, (_, i) => i + 6));
    closeClients();
  });

  it("pages history as an async iterator, backward and forward", async () => {
    const room = unique("room");
    const c = client(ws, unique("u"), [room]);
    for (let i = 1; i <= 12; i++) await c.publish(room, "n", i);
    const s = c.subscribe(room);
    const back: number[][] = [];
    for await (const page of s.history({ pageSize: 5 }))
      back.push(page.map((e) => e.body as number));
    expect(back).toEqual([
      [8, 9, 10, 11, 12],
      [3, 4, 5, 6, 7],
      [1, 2],
    ]);
    const forward: number[][] = [];
    for await (const page of s.history({ direction: "forward", afterSeq: 0, pageSize: 5 })) {
      forward.push(page.map((e) => e.body as number));
    }
    expect(forward).toEqual([
      [1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10],
      [11, 12],
    ]);
  });
});

describe("at-least-once", () => {
  it("acks after the handler resolves; a failed handler's event comes again after a reconnect", async () => {
    const room = unique("room");
    const user = unique("u");
    const c = client(ws, user, [room]);
    const s = c.subscribe(room, { delivery: "at_least_once" });
    const handled: number[] = [];
    const seqOf = new Map<number, number>();
    let failOnce = true;
    s.on("event", async (e) => {
      seqOf.set(e.body as number, e.seq);
      await new Promise((r) => setTimeout(r, 1));
      if (e.body === 3 && failOnce) {
        failOnce = false;
        throw new Error("handler failed");
      }
      handled.push(e.body as number);
    });
    const errors: Error[] = [];
    s.on("error", (e) => {
      errors.push(e);
    });
    await s.ready;
    const pub = client(ws, unique("p"), [room]);
    for (let i = 1; i <= 5; i++) await pub.publish(room, "n", i);
    await waitFor(() => handled.length === 4, { what: "4 handled events" });
    expect(handled).toEqual([1, 2, 4, 5]);
    expect(errors.map((e) => e.message)).toEqual(["handler failed"]);
    // Acked as each handler resolved, on this connection, with no reconnect in
    // between: the gateway holds the acks of 1, 2, 4 and 5, and not of 3.
    const acks = gw.engine.kv(TEST_APP.id, "acks");
    const ackedSeqs = async () => {
      const entry = await acks.get(JSON.stringify([user, room]));
      return ((entry?.value as { acked?: number[] } | undefined)?.acked ?? [])
        .slice()
        .sort((a, b) => a - b);
    };
    await waitFor(async () => (await ackedSeqs()).length >= 4, { what: "4 acks at the gateway" });
    expect(await ackedSeqs()).toEqual([1, 2, 4, 5].map((b) => seqOf.get(b)));
    dropUser(gw, user);
    await waitFor(() => handled.length === 5, { what: "the redelivered event" });
    expect(handled).toEqual([1, 2, 4, 5, 3]);
    // Every event is acked now: a new connection of the same user gets nothing again.
    const [cAck] = await Promise.all([nextEmit(c, "connected"), dropUser(gw, user)]);
    expect(cAck[0].user_id).toBe(user);
    const other = client(ws, user, [room]);
    const again = collect(other.subscribe(room, { delivery: "at_least_once" }));
    await other.subscribe(room).ready;
    await pub.publish(room, "n", 6);
    await waitFor(() => again.length >= 1 && handled.length === 6, { what: "event 6" });
    expect(again.map((e) => e.body)).toEqual([6]);
  });
});

describe("typing, cursors, reactions, presence", () => {
  it("relays typing with renewal and stop, cursors, reactions and members", async () => {
    const room = `presence-${unique("room")}`;
    const ua = unique("a");
    const ub = unique("b");
    const a = client(ws, ua, [room]);
    const b = client(ws, ub, [room]);
    const sa = a.subscribe(room);
    await sa.ready;
    const joined = nextEmit(sa, "members", (m: Member[]) => m.some((x) => x.user_id === ub));
    const sb = b.subscribe(room);
    const info = await sb.ready;
    expect(info.members?.map((m) => m.user_id).sort()).toEqual([ua, ub].sort());
    await joined;

    const typingOn = nextEmit(sa, "typing", (t) => t.active);
    sb.startTyping();
    const [t] = await typingOn;
    expect(t).toMatchObject({ user_id: ub, active: true });
    expect(sa.typing).toEqual([ub]);
    const typingOff = nextEmit(sa, "typing", (t) => !t.active);
    sb.stopTyping();
    await typingOff;
    expect(sa.typing).toEqual([]);

    const ack = await sa.publish("message", { text: "hi" });
    const moved = nextEmit(sb, "cursor");
    sa.markRead(ack.seq);
    expect((await moved)[0]).toEqual({ stream_id: room, user_id: ua, seq: ack.seq });

    const reacted = nextEmit(sa, "reaction");
    sb.react(ack.event_id, "👍");
    expect((await reacted)[0]).toMatchObject({ user_id: ub, emoji: "👍", action: "add", count: 1 });

    const status = nextEmit(a, "presence", (p) => p.user_id === ub);
    b.setStatus("away");
    expect((await status)[0].status).toBe("away");
    await waitFor(() => sa.members.find((m) => m.user_id === ub)?.status === "away");

    const left = nextEmit(sa, "members", (_m, change) => change?.action === "left");
    b.close();
    expect((await left)[0].map((m: Member) => m.user_id)).toEqual([ua]);
  });

  it("reports a refused reaction (unknown event) on the stream", async () => {
    const room = unique("room");
    const c = client(ws, unique("u"), [room]);
    const s = c.subscribe(room);
    await s.ready;
    const err = nextEmit(s, "error");
    s.react("evt_nope", "x");
    expect((await err)[0]).toMatchObject({ code: "not_found" });
  });
});
