import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../shared/test/wait.js";
import {
  broadcasterConnect,
  broadcasterJwt,
  call,
  isMessage,
  type Notification,
} from "./broadcaster-client.js";
import { BrokenEngine } from "./broken-engine.js";
import { appKeyAuth, type FoonyFrame, foonyConnect, foonyJwt, isT, req } from "./foony-client.js";
import { startTestGateway, type TestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";

let gw: TestGateway;
const engine = new BrokenEngine();
beforeAll(async () => {
  gw = await startTestGateway({
    engine,
    env: {
      TIDINGS_MAX_SUBSCRIPTIONS: "3",
      TIDINGS_MAX_FRAME_BYTES: "4096",
    },
  });
});
afterAll(async () => {
  await gw?.stop();
  await engine.close();
});

const server = (clientId?: string) => foonyConnect(gw.url, appKeyAuth(clientId));
const withToken = (claims: Record<string, unknown>) => foonyConnect(gw.url, foonyJwt(claims));

describe("foony channels", () => {
  it("delivers pub to every subscriber, publisher included, after the ack", async () => {
    const a = await withToken({ sub: "ann" });
    const b = await server();
    expect(await req(a, { t: "sub", channel: "room" })).toMatchObject({ t: "ack" });
    await req(b, { t: "sub", channel: "room" });
    const ack = await req(a, { t: "pub", channel: "room", name: "chat", data: { text: "hi" } });
    expect(ack.t).toBe("ack");
    for (const c of [a, b]) {
      const m = await c.next<FoonyFrame>(isT("msg"));
      expect(m).toMatchObject({
        channel: "room",
        name: "chat",
        data: { text: "hi" },
        clientId: "ann",
      });
      expect(m.messageId).toMatch(/^m_\d+$/);
      expect(typeof m.timestamp).toBe("number");
      expect(Math.abs((m.timestamp as number) - Date.now())).toBeLessThan(10_000);
    }
    a.close();
    b.close();
  });

  it("resumes after lastMessageId: replay in order, then live, no duplicates or gaps", async () => {
    const pub = await server("pub");
    const ids: string[] = [];
    const watcher = await server();
    await req(watcher, { t: "sub", channel: "resume" });
    for (let i = 1; i <= 5; i++)
      await req(pub, { t: "pub", channel: "resume", name: "n", data: i });
    for (let i = 1; i <= 5; i++)
      ids.push((await watcher.next<FoonyFrame>(isT("msg"))).messageId as string);

    const late = await server();
    // Keep publishing while the late subscriber replays, to race replay against live.
    const burst = Array.from({ length: 30 }, (_, i) =>
      req(pub, { t: "pub", channel: "resume", name: "n", data: 6 + i }),
    );
    const ack = await req(late, { t: "sub", channel: "resume", lastMessageId: ids[1] });
    expect(ack.t).toBe("ack");
    await Promise.all(burst);
    await waitFor(() => late.all<FoonyFrame>(isT("msg")).length >= 33, { what: "replay + live" });
    const got = late.all<FoonyFrame>(isT("msg")).map((m) => m.data);
    expect(got).toEqual(Array.from({ length: 33 }, (_, i) => i + 3));
    // The ack comes before the first replayed message.
    const frames = late.frames as FoonyFrame[];
    expect(frames.findIndex((f) => f.t === "ack")).toBeLessThan(
      frames.findIndex((f) => f.t === "msg"),
    );
    for (const c of [pub, watcher, late]) c.close();
  });

  it("unsub stops delivery; unsub when not subscribed is 40400", async () => {
    const c = await server();
    await req(c, { t: "sub", channel: "leaving" });
    expect(await req(c, { t: "unsub", channel: "leaving" })).toMatchObject({ t: "ack" });
    const again = await req(c, { t: "unsub", channel: "leaving" });
    expect(again).toMatchObject({ t: "err", code: 40400 });
    await req(c, { t: "pub", channel: "leaving", name: "n", data: 1 });
    c.send({ t: "ping" });
    await c.next<FoonyFrame>(isT("pong"));
    expect(c.all<FoonyFrame>(isT("msg"))).toEqual([]);
    c.close();
  });

  it("an unsub sent right behind its sub is acked and wins", async () => {
    const c = await server();
    c.send({ t: "sub", channel: "flicker", id: 501 });
    c.send({ t: "unsub", channel: "flicker", id: 502 });
    expect(await c.next<FoonyFrame>((f) => f.id === 501)).toEqual({ t: "ack", id: 501 });
    expect(await c.next<FoonyFrame>((f) => f.id === 502)).toEqual({ t: "ack", id: 502 });
    await req(c, { t: "pub", channel: "flicker", name: "n", data: 1 });
    c.send({ t: "ping" });
    await c.next<FoonyFrame>(isT("pong"));
    expect(c.all<FoonyFrame>(isT("msg"))).toEqual([]);
    c.close();
  });

  it("limits subscriptions per connection with 40001", async () => {
    const c = await server();
    for (const ch of ["l1", "l2", "l3"])
      expect((await req(c, { t: "sub", channel: ch })).t).toBe("ack");
    expect(await req(c, { t: "sub", channel: "l4" })).toMatchObject({ t: "err", code: 40001 });
    c.close();
  });

  it("checks capabilities per channel pattern and operation (40300)", async () => {
    const c = await withToken({ sub: "cap", capability: { "chat-*": ["subscribe"], open: ["*"] } });
    expect((await req(c, { t: "sub", channel: "chat-1" })).t).toBe("ack");
    for (const frame of [
      { t: "pub", channel: "chat-1", name: "n", data: 1 },
      { t: "pres", channel: "chat-1", action: "enter" },
      { t: "hist", channel: "chat-1" },
      { t: "sub", channel: "elsewhere" },
    ]) {
      expect(await req(c, frame)).toMatchObject({ t: "err", code: 40300 });
    }
    for (const frame of [
      { t: "sub", channel: "open" },
      { t: "pub", channel: "open", name: "n", data: 1 },
      { t: "pres", channel: "open", action: "enter" },
      { t: "hist", channel: "open" },
    ]) {
      expect((await req(c, frame)).t).not.toBe("err");
    }
    const none = await withToken({ sub: "nobody", capability: undefined });
    expect(await req(none, { t: "sub", channel: "open" })).toMatchObject({ code: 40300 });
    c.close();
    none.close();
  });

  it("answers invalid channel names with 40001 for every request", async () => {
    const c = await server();
    for (const channel of ["", "a b", "x".repeat(201), "#x", 7]) {
      for (const t of ["sub", "unsub", "pub", "pres", "hist"]) {
        const r = await req(c, { t, channel, name: "n", action: "enter" });
        expect(r).toMatchObject({ t: "err", code: 40001 });
      }
    }
    c.close();
  });

  it("answers a storage failure with 50000 and stays up", async () => {
    const c = await server();
    expect(await req(c, { t: "pub", channel: "broken-1", name: "n", data: 1 })).toMatchObject({
      t: "err",
      code: 50000,
    });
    c.send({ t: "ping" });
    await c.next<FoonyFrame>(isT("pong"));
    c.close();
  });
});

describe("foony history", () => {
  it("pages newest first by limit and before, each page oldest first", async () => {
    const c = await server("historian");
    for (let i = 1; i <= 5; i++) await req(c, { t: "pub", channel: "hist", name: "n", data: i });
    const page = await req(c, { t: "hist", channel: "hist", limit: 2 });
    expect(page).toMatchObject({ t: "histRes", channel: "hist", more: true });
    const messages = page.messages as FoonyFrame[];
    expect(messages.map((m) => m.data)).toEqual([4, 5]);
    expect(messages[0]).toMatchObject({ t: "msg", name: "n", clientId: "historian" });
    const older = await req(c, {
      t: "hist",
      channel: "hist",
      limit: 10,
      before: messages[0]?.messageId,
    });
    expect((older.messages as FoonyFrame[]).map((m) => m.data)).toEqual([1, 2, 3]);
    expect(older.more).toBe(false);
    const all = await req(c, { t: "hist", channel: "hist" });
    expect((all.messages as FoonyFrame[]).length).toBe(5);
    expect(await req(c, { t: "hist", channel: "hist", limit: 1001 })).toMatchObject({
      code: 40001,
    });
    c.close();
  });
});

describe("foony presence", () => {
  it("relays enter, update and leave to subscribers; leave when absent is 40400", async () => {
    const watcher = await server();
    await req(watcher, { t: "sub", channel: "lobby" });
    const ann = await withToken({ sub: "ann" });
    const annId = ann.connected.connectionId;
    await req(ann, { t: "pres", channel: "lobby", action: "enter", data: { mood: "ok" } });
    expect(await watcher.next<FoonyFrame>(isT("presEvt"))).toMatchObject({
      channel: "lobby",
      action: "enter",
      clientId: "ann",
      connectionId: annId,
      data: { mood: "ok" },
    });
    await req(ann, { t: "pres", channel: "lobby", action: "update", data: { mood: "busy" } });
    const update = await watcher.next<FoonyFrame>(isT("presEvt"));
    expect(update).toMatchObject({ action: "update", data: { mood: "busy" } });
    expect(typeof update.timestamp).toBe("number");
    await req(ann, { t: "pres", channel: "lobby", action: "leave" });
    expect(await watcher.next<FoonyFrame>(isT("presEvt"))).toMatchObject({
      action: "leave",
      data: { mood: "busy" },
    });
    expect(await req(ann, { t: "pres", channel: "lobby", action: "leave" })).toMatchObject({
      t: "err",
      code: 40400,
    });
    await req(ann, { t: "pres", channel: "lobby", action: "update", data: 1 });
    expect(await watcher.next<FoonyFrame>(isT("presEvt"))).toMatchObject({
      action: "enter",
      data: 1,
    });
    ann.close();
    watcher.close();
  });

  it("a closed connection leaves every channel it entered", async () => {
    const watcher = await server();
    await req(watcher, { t: "sub", channel: "p1" });
    await req(watcher, { t: "sub", channel: "p2" });
    const bob = await withToken({ sub: "bob" });
    await req(bob, { t: "pres", channel: "p1", action: "enter", data: "x" });
    await req(bob, { t: "pres", channel: "p2", action: "enter" });
    await waitFor(() => watcher.all<FoonyFrame>(isT("presEvt")).length === 2, { what: "enters" });
    bob.close();
    await waitFor(
      () => watcher.all<FoonyFrame>(isT("presEvt", (f) => f.action === "leave")).length === 2,
      { what: "leaves on close" },
    );
    const leaves = watcher.all<FoonyFrame>(isT("presEvt", (f) => f.action === "leave"));
    expect(leaves.map((f) => [f.channel, f.clientId]).sort()).toEqual([
      ["p1", "bob"],
      ["p2", "bob"],
    ]);
    expect(leaves.find((f) => f.channel === "p1")?.data).toBe("x");
    watcher.close();
  });
});

describe("foony presence set on sub", () => {
  // The wire has no presence query: a client joining later learns who is here from its sub.
  it("sends one enter per present connection after the sub's ack, then live changes", async () => {
    const ann = await withToken({ sub: "ann" });
    const ann2 = await withToken({ sub: "ann" });
    const bob = await withToken({ sub: "bob" });
    await req(ann, { t: "pres", channel: "here", action: "enter", data: { n: 1 } });
    await req(ann2, { t: "pres", channel: "here", action: "enter" });
    await req(bob, { t: "pres", channel: "here", action: "enter", data: "b" });
    await req(bob, { t: "pres", channel: "here", action: "leave" });
    const late = await server();
    const ack = await req(late, { t: "sub", channel: "here" });
    expect(ack.t).toBe("ack");
    await waitFor(() => late.all<FoonyFrame>(isT("presEvt")).length === 2, { what: "the set" });
    const frames = late.all<FoonyFrame>(() => true);
    // The set follows the ack: a client can tell its subscription is in place before it fills.
    expect(frames.findIndex((f) => f.t === "ack")).toBeLessThan(frames.findIndex(isT("presEvt")));
    expect(late.all<FoonyFrame>(isT("presEvt"))).toEqual([
      expect.objectContaining({
        channel: "here",
        action: "enter",
        clientId: "ann",
        connectionId: ann.connected.connectionId,
        data: { n: 1 },
      }),
      expect.objectContaining({
        action: "enter",
        clientId: "ann",
        connectionId: ann2.connected.connectionId,
      }),
    ]);
    ann2.close();
    const leave = await late.next<FoonyFrame>(isT("presEvt", (f) => f.action === "leave"));
    expect(leave).toMatchObject({ clientId: "ann", connectionId: ann2.connected.connectionId });
    // An update that changes nothing is not announced; the next real change is.
    await req(ann, { t: "pres", channel: "here", action: "update", data: { n: 1 } });
    await req(ann, { t: "pres", channel: "here", action: "update", data: { n: 2 } });
    const next = await late.next<FoonyFrame>(isT("presEvt", (f) => f.action === "update"));
    expect(next).toMatchObject({ clientId: "ann", data: { n: 2 } });
    expect(late.all<FoonyFrame>(isT("presEvt")).length).toBe(4);
    for (const c of [ann, bob, late]) c.close();
  });

  // The service, not the gateway, announces a closed connection's leaves: exactly one each.
  it("a closed connection's leave is sent once", async () => {
    const watcher = await server();
    await req(watcher, { t: "sub", channel: "once" });
    const cat = await withToken({ sub: "cat" });
    await req(cat, { t: "pres", channel: "once", action: "enter" });
    cat.close();
    await watcher.next<FoonyFrame>(isT("presEvt", (f) => f.action === "leave"));
    // A later event on the same channel: any second leave would have arrived before it.
    const dan = await withToken({ sub: "dan" });
    await req(dan, { t: "pres", channel: "once", action: "enter" });
    await watcher.next<FoonyFrame>(isT("presEvt", (f) => f.clientId === "dan"));
    const leaves = watcher.all<FoonyFrame>(isT("presEvt", (f) => f.action === "leave"));
    expect(leaves.map((f) => f.clientId)).toEqual(["cat"]);
    dan.close();
    watcher.close();
  });
});

describe("foony malformed frames", () => {
  it("answers random, truncated, binary and oversized frames with 40001; others unaffected", async () => {
    const bad = await server();
    const good = await server();
    await req(good, { t: "sub", channel: "steady" });
    const valid = JSON.stringify({ t: "pub", channel: "steady", name: "n", data: [1, 2], id: 99 });
    const frames: (string | Buffer)[] = [
      "",
      "null",
      "{}",
      '{"t":7}',
      '{"t":"sub"}',
      '{"t":"sub","channel":"c","id":1.5}',
      "\u0000\u0001",
      "x".repeat(5000),
      Buffer.from([0xff, 0xfe, 0x00, 0x80]),
    ];
    for (let i = 1; i < valid.length; i += 5) frames.push(valid.slice(0, i));
    let seed = 11;
    for (let i = 0; i < 30; i++) {
      let s = "";
      for (let j = 0; j < 40; j++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        s += String.fromCharCode(32 + (seed % 95));
      }
      frames.push(s);
    }
    for (const f of frames) {
      if (typeof f === "string") bad.sendRaw(f);
      else bad.sendRaw(f, true);
    }
    const errors = () => bad.all<FoonyFrame>(isT("err"));
    await waitFor(() => errors().length === frames.length, { what: "an err per frame" });
    expect(new Set(errors().map((e) => e.code))).toEqual(new Set([40001]));
    expect(errors().some((e) => e.message === "frame too large")).toBe(true);
    expect(errors().some((e) => e.message === "frame is not valid UTF-8")).toBe(true);
    bad.send({ t: "ping" });
    await bad.next<FoonyFrame>(isT("pong"));
    await req(bad, { t: "pub", channel: "steady", name: "still", data: true });
    expect((await good.next<FoonyFrame>(isT("msg"))).name).toBe("still");
    bad.close();
    good.close();
  });
});

describe("foony interop", () => {
  it("maps herald type/body/user_id to name/data/clientId and back", async () => {
    const f = await server();
    await req(f, { t: "sub", channel: "mixed" });
    const h = await heraldConnect(heraldUrl(gw.url, "u1", ["mixed"]));
    await request(h, "subscribe", { stream_id: "mixed" });

    const ack = await request(h, "event.publish", {
      stream_id: "mixed",
      type: "hello",
      body: { x: 1 },
    });
    expect(await f.next<FoonyFrame>(isT("msg"))).toMatchObject({
      channel: "mixed",
      name: "hello",
      data: { x: 1 },
      clientId: "u1",
      messageId: `m_${ack.payload.seq}`,
    });

    const fooner = await withToken({ sub: "fooner" });
    await req(fooner, { t: "pub", channel: "mixed", name: "from-foony", data: [true] });
    const ev = await h.next<Frame>(isType("event.new", (p) => p.type === "from-foony"));
    expect(ev.payload).toMatchObject({ stream_id: "mixed", body: [true], user_id: "fooner" });
    const m = await f.next<FoonyFrame>(isT("msg", (x) => x.name === "from-foony"));
    expect(m.messageId).toBe(`m_${ev.payload.seq}`);
    expect(m.timestamp).toBe(Date.parse(ev.payload.created_at as string));
    for (const c of [f, h, fooner]) c.close();
  });

  it("reaches broadcaster subscribers and receives their publishes", async () => {
    const f = await server();
    await req(f, { t: "sub", channel: "bridge" });
    const b = await broadcasterConnect(gw.url, broadcasterJwt({ sub: "bc" }));
    await call(b, "subscribe", { channel: "bridge" });
    await req(f, { t: "pub", channel: "bridge", name: "ping", data: "from foony" });
    expect((await b.next<Notification>(isMessage())).params).toMatchObject({
      event: "ping",
      payload: "from foony",
      seq: 1,
    });
    await call(b, "publish", { channel: "bridge", event: "pong", payload: { ok: 1 } });
    expect(await f.next<FoonyFrame>(isT("msg", (x) => x.name === "pong"))).toMatchObject({
      data: { ok: 1 },
      clientId: "bc",
    });
    f.close();
    b.close();
  });
});
