import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../shared/test/wait.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import {
  connected,
  nextEvent,
  type Pusher,
  postJson,
  pusherClient,
  pusherServer,
  rawPusher,
  subscribe,
} from "./pusher-client.js";

let gw: TestGateway;
const clients: Pusher[] = [];
beforeAll(async () => {
  gw = await startTestGateway({ env: { TIDINGS_CLIENT_EVENT_RATE: "5" } });
});
afterAll(async () => {
  await gw?.stop();
});
afterEach(() => {
  for (const p of clients.splice(0)) p.disconnect();
});
const client = (o: Parameters<typeof pusherClient>[1] = {}, g = gw) => {
  const p = pusherClient(g, o);
  clients.push(p);
  return p;
};
/** Errors pusher-js surfaces on its connection (`pusher:error` frames). */
const connectionErrors = (p: Pusher) => {
  const errors: { code: number | null; message: string }[] = [];
  p.connection.bind("error", (e: { type: string; data?: { code: number; message: string } }) => {
    if (e.type === "PusherError" && e.data) errors.push(e.data);
  });
  return errors;
};

describe("pusher public channels", () => {
  it("delivers server SDK events; data keeps its JSON shape", async () => {
    const p = client();
    const socketId = await connected(p);
    expect(socketId).toMatch(/^[0-9]+\.[0-9]+$/);
    const { channel } = await subscribe(p, "news");
    const got = nextEvent(channel, "headline");
    await pusherServer(gw).trigger("news", "headline", { title: "hi", n: [1, 2] });
    expect((await got).data).toEqual({ title: "hi", n: [1, 2] });
    const plain = nextEvent(channel, "text");
    await pusherServer(gw).trigger("news", "text", "just words");
    expect((await plain).data).toBe("just words");
  });

  it("excludes the socket_id given to trigger", async () => {
    const a = client();
    const b = client();
    const aId = await connected(a);
    await connected(b);
    const ca = (await subscribe(a, "excl")).channel;
    const cb = (await subscribe(b, "excl")).channel;
    const seenA: unknown[] = [];
    ca.bind("e", (d: unknown) => seenA.push(d));
    const gotB = nextEvent(cb, "e");
    await pusherServer(gw).trigger("excl", "e", { n: 1 }, { socket_id: aId });
    expect((await gotB).data).toEqual({ n: 1 });
    const gotA = nextEvent(ca, "e");
    await pusherServer(gw).trigger("excl", "e", { n: 2 });
    expect((await gotA).data).toEqual({ n: 2 });
    expect(seenA).toEqual([{ n: 2 }]);
  });

  it("reports subscription counts with pusher:subscription_count", async () => {
    const a = client();
    const b = client();
    const { channel } = await subscribe(a, "counted");
    const counts: number[] = [];
    channel.bind("pusher:subscription_count", (d: { subscription_count: number }) =>
      counts.push(d.subscription_count),
    );
    await subscribe(b, "counted");
    await waitFor(() => counts.includes(2), { what: "subscription_count 2" });
  });
});

describe("pusher private and presence channels", () => {
  it("subscribes to a private channel with a valid signature", async () => {
    const p = client();
    await connected(p);
    const { channel } = await subscribe(p, "private-orders");
    const got = nextEvent(channel, "placed");
    await pusherServer(gw).trigger("private-orders", "placed", { id: 7 });
    expect((await got).data).toEqual({ id: 7 });
  });

  it("answers a bad signature with pusher:subscription_error (AuthError, 401)", async () => {
    const p = client({ secret: "not-the-secret", member: { user_id: "mallory" } });
    await connected(p);
    const err = await subscribe(p, "private-orders").catch((e: { data: unknown }) => e.data);
    expect(err).toEqual({ type: "AuthError", error: "Invalid signature", status: 401 });
    const forged = await subscribe(p, "presence-room").catch((e: { data: unknown }) => e.data);
    expect(forged).toMatchObject({ type: "AuthError", status: 401 });
  });

  it("answers an invalid channel name with subscription_error on that channel; the connection carries on", async () => {
    const p = client();
    await connected(p);
    const errors = connectionErrors(p);
    for (const name of ["bad name!", "x".repeat(201), "héllo"]) {
      const refused: unknown[] = [];
      p.subscribe(name).bind("pusher:subscription_error", (d: unknown) => refused.push(d));
      // Before the fix the refusal came as a connection-level pusher:error instead.
      await waitFor(() => refused.length + errors.length > 0, { what: `an answer for ${name}` });
      expect(errors).toEqual([]);
      expect(refused).toEqual([
        {
          type: "InvalidChannelName",
          error: expect.stringMatching(/^invalid channel name: it must be 1-200 characters/),
          status: 4009,
        },
      ]);
      p.unsubscribe(name);
    }
    const { channel } = await subscribe(p, "valid-after-invalid");
    const got = nextEvent(channel, "e");
    await pusherServer(gw).trigger("valid-after-invalid", "e", { ok: true });
    expect((await got).data).toEqual({ ok: true });
    expect(errors).toEqual([]);
  });

  it("lists members with user_info and announces joins and leaves at user level", async () => {
    const alice = client({ member: { user_id: "alice", user_info: { name: "Alice" } } });
    const bob = client({ member: { user_id: "bob", user_info: { name: "Bob" } } });
    const bob2 = client({ member: { user_id: "bob", user_info: { name: "Bob" } } });
    const a = (await subscribe(alice, "presence-lobby")).channel;
    const added = nextEvent(a, "pusher:member_added");
    const { data } = await subscribe(bob, "presence-lobby");
    const members = data as {
      count: number;
      me: { id: string };
      each(f: (m: unknown) => void): void;
    };
    expect(members.count).toBe(2);
    expect(members.me).toEqual({ id: "bob", info: { name: "Bob" } });
    expect((await added).data).toEqual({ id: "bob", info: { name: "Bob" } });
    // A second connection of the same user is not a new member.
    const again = await subscribe(bob2, "presence-lobby");
    expect((again.data as { count: number }).count).toBe(2);
    const removed = nextEvent(a, "pusher:member_removed");
    bob.disconnect();
    bob2.disconnect();
    expect((await removed).data).toEqual({ id: "bob", info: { name: "Bob" } });
  });

  it("refuses a full presence channel with subscription_error", async () => {
    await using small = await startTestGateway({ env: { TIDINGS_MAX_PRESENCE_MEMBERS: "1" } });
    const one = client({ member: { user_id: "one" } }, small);
    const two = client({ member: { user_id: "two" } }, small);
    await subscribe(one, "presence-tiny");
    const err = await subscribe(two, "presence-tiny").catch((e: { data: unknown }) => e.data);
    expect(err).toMatchObject({ type: "LimitReached", status: 4100 });
  });

  it("relays client events to others, never back, with user_id on presence", async () => {
    const a = client({ member: { user_id: "ann" } });
    const b = client({ member: { user_id: "ben" } });
    const ca = (await subscribe(a, "presence-chat")).channel;
    const cb = (await subscribe(b, "presence-chat")).channel;
    const echoed: unknown[] = [];
    ca.bind("client-typing", (d: unknown) => echoed.push(d));
    const got = nextEvent(cb, "client-typing");
    ca.trigger("client-typing", { on: true });
    const ev = await got;
    expect(ev.data).toEqual({ on: true });
    expect(ev.meta?.user_id).toBe("ann");
    // Something after it arrives back at a: proves a's own event was not echoed in between.
    const back = nextEvent(ca, "client-reply");
    cb.trigger("client-reply", { ok: 1 });
    await back;
    expect(echoed).toEqual([]);

    const pa = (await subscribe(a, "private-dm")).channel;
    const pb = (await subscribe(b, "private-dm")).channel;
    const dm = nextEvent(pb, "client-hi");
    pa.trigger("client-hi", "hello");
    expect((await dm).data).toBe("hello");
  });

  it("refuses client events on public channels and over the rate (4301)", async () => {
    const p = client();
    const errors = connectionErrors(p);
    const pub = (await subscribe(p, "public-room")).channel;
    pub.trigger("client-x", {});
    await waitFor(() => errors.length === 1, { what: "refusal" });
    expect(errors[0]).toMatchObject({ code: null });
    expect(errors[0]?.message).toMatch(/not allowed/);
    const priv = (await subscribe(p, "private-burst")).channel;
    for (let i = 0; i < 8; i++) priv.trigger("client-burst", { i });
    await waitFor(() => errors.some((e) => e.code === 4301), { what: "4301" });
    expect(p.connection.state).toBe("connected");
  });

  it("relays end-to-end encrypted events the SDKs encrypt and decrypt", async () => {
    const p = client();
    const { channel } = await subscribe(p, "private-encrypted-vault");
    const got = nextEvent(channel, "secret");
    await pusherServer(gw).trigger("private-encrypted-vault", "secret", { pin: 1234 });
    expect((await got).data).toEqual({ pin: 1234 });
  });
});

describe("pusher cache channels", () => {
  it.each(["cache-prices", "private-cache-prices", "presence-cache-prices"])(
    "%s: cache_miss when empty, then the last event on subscribe",
    async (name) => {
      const a = client({ member: { user_id: "c1" } });
      await connected(a);
      const chA = a.subscribe(name);
      const miss = nextEvent(chA, "pusher:cache_miss");
      await miss;
      const server = pusherServer(gw);
      await server.trigger(name, "price", { v: 1 });
      await server.trigger(name, "price", { v: 2 });
      const b = client({ member: { user_id: "c2" } });
      await connected(b);
      const chB = b.subscribe(name);
      expect((await nextEvent(chB, "price")).data).toEqual({ v: 2 });
    },
  );
});

describe("pusher user authentication", () => {
  it("signs in, receives server-to-user events and watchlist online/offline", async () => {
    const watcher = client({ user: { id: "w", watchlist: ["friend", "early"] } });
    const early = client({ user: { id: "early" } });
    early.signin();
    await waitFor(() => early.user.user_data !== null, { what: "early signin" });
    watcher.signin();
    const online: string[][] = [];
    const offline: string[][] = [];
    watcher.user.watchlist.bind("online", (e: { user_ids: string[] }) => online.push(e.user_ids));
    watcher.user.watchlist.bind("offline", (e: { user_ids: string[] }) => offline.push(e.user_ids));
    await waitFor(() => watcher.user.user_data !== null, { what: "signin_success" });
    await waitFor(() => online.flat().includes("early"), { what: "initial online" });

    const got = new Promise((resolve) => watcher.user.bind("note", resolve));
    await pusherServer(gw).sendToUser("w", "note", { text: "for you" });
    expect(await got).toEqual({ text: "for you" });

    const friend = client({ user: { id: "friend" } });
    friend.signin();
    await waitFor(() => online.flat().includes("friend"), { what: "friend online" });
    friend.disconnect();
    await waitFor(() => offline.flat().includes("friend"), { what: "friend offline" });
  });

  it("closes every connection of a user on terminate_connections (4009)", async () => {
    const { c, socketId } = await rawPusher(gw);
    const userData = JSON.stringify({ id: "bye" });
    const { auth } = pusherServer(gw).authenticateUser(socketId, { id: "bye" });
    c.send({ event: "pusher:signin", data: { auth, user_data: userData } });
    await c.next((f) => f.event === "pusher:signin_success");
    await pusherServer(gw).terminateUserConnections("bye");
    expect((await c.waitClosed()).code).toBe(4009);
  });
});

describe("pusher HTTP API through the server SDK", () => {
  it("answers channel queries: list, info, users", async () => {
    const a = client({ member: { user_id: "u1" } });
    const b = client({ member: { user_id: "u2" } });
    await subscribe(a, "presence-api");
    await subscribe(b, "presence-api");
    await subscribe(a, "api-public");
    const server = pusherServer(gw);
    const list = await (
      await server.get({
        path: "/channels",
        params: { filter_by_prefix: "presence-api", info: "user_count" },
      })
    ).json();
    expect(list).toEqual({ channels: { "presence-api": { user_count: 2 } } });
    const all = (await (await server.get({ path: "/channels" })).json()) as {
      channels: Record<string, unknown>;
    };
    expect(all.channels["api-public"]).toEqual({});
    const info = await (
      await server.get({
        path: "/channels/presence-api",
        params: { info: "user_count,subscription_count" },
      })
    ).json();
    expect(info).toEqual({ occupied: true, user_count: 2, subscription_count: 2 });
    const empty = await (await server.get({ path: "/channels/nobody-here" })).json();
    expect(empty).toEqual({ occupied: false });
    const users = (await (await server.get({ path: "/channels/presence-api/users" })).json()) as {
      users: { id: string }[];
    };
    expect(users.users.map((u) => u.id).sort()).toEqual(["u1", "u2"]);
  });

  it("returns info attributes from trigger and batch", async () => {
    const a = client({ member: { user_id: "i1" } });
    await subscribe(a, "presence-info");
    const server = pusherServer(gw);
    const res = await server.trigger(
      ["presence-info", "info-empty"],
      "e",
      {},
      {
        info: "user_count,subscription_count",
      },
    );
    expect(await res.json()).toEqual({
      channels: {
        "presence-info": { user_count: 1, subscription_count: 1 },
        "info-empty": { subscription_count: 0 },
      },
    });
    const batch = await server.triggerBatch([
      { channel: "presence-info", name: "b1", data: { x: 1 }, info: "user_count" },
      { channel: "info-empty", name: "b2", data: "plain" },
    ]);
    expect(await batch.json()).toEqual({ batch: [{ user_count: 1 }, {}] });
  });

  it("refuses bad requests with Pusher's statuses and text bodies", async () => {
    const wrong = pusherServer(gw, { secret: "wrong" });
    const status = (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: { status: number; body: string }) => `${e.status} ${e.body.trim()}`,
      );
    expect(await status(wrong.trigger("x", "e", {}))).toMatch(/^401 Invalid signature/);
    expect(await status(pusherServer(gw, { appId: "nope" }).trigger("x", "e", {}))).toMatch(
      /^404 Unknown app/,
    );
    const server = pusherServer(gw);
    expect(await status(server.trigger("x", "pusher:fake", {}))).toMatch(/^403 /);
    // The SDK validates names itself, so send what another client might.
    const raw = (body: unknown) => postJson(server, "/events", body);
    expect(await status(raw({ name: "e", channels: ["bad channel!"], data: "{}" }))).toMatch(
      /^400 Invalid channel/,
    );
    expect(await status(raw({ name: "e", channels: [], data: "{}" }))).toMatch(/^400 /);
    const many = Array.from({ length: 101 }, (_, i) => `c${i}`);
    expect(await status(raw({ name: "e", channels: many, data: "{}" }))).toMatch(/^400 At most/);
    expect(await status(raw({ name: "e", channel: "x", data: "{}", socket_id: "x" }))).toMatch(
      /^400 Invalid socket_id/,
    );
    expect(await status(server.trigger("x", "e", "z".repeat(70_000)))).toMatch(/^413 /);
    expect(await status(server.get({ path: "/channels", params: { info: "user_count" } }))).toMatch(
      /^400 user_count/,
    );
    expect(await status(server.get({ path: "/channels/public-x/users" }))).toMatch(/^400 /);
    const ten = Array.from({ length: 11 }, (_, i) => ({ channel: "b", name: `e${i}`, data: {} }));
    expect(await status(server.triggerBatch(ten))).toMatch(/^400 Batch too large/);
  });
});

describe("pusher interop with herald", () => {
  it("HTTP events are stored events: herald sees them, idempotency keys dedupe", async () => {
    const h = await heraldConnect(heraldUrl(gw.url, "h1", ["shared-room"]));
    await request(h, "subscribe", { stream_id: "shared-room" });
    const server = pusherServer(gw);
    const body = { name: "msg", channels: ["shared-room"], data: JSON.stringify({ n: 1 }) };
    await postJson(server, "/events", { ...body, idempotency_key: "k1" });
    await postJson(server, "/events", { ...body, idempotency_key: "k1" });
    await postJson(server, "/events", { ...body, data: "not json" });
    const first = await h.next<Frame>(isType("event.new"));
    expect(first.payload).toMatchObject({ stream_id: "shared-room", type: "msg", body: { n: 1 } });
    const second = await h.next<Frame>(isType("event.new"));
    expect(second.payload.body).toBe("not json");
    expect(h.all<Frame>(isType("event.new"))).toHaveLength(2);
    const history = await gw.engine.history(TEST_APP.id, "shared-room", { limit: 10 });
    expect(history.events.map((e) => e.data)).toEqual([{ n: 1 }, "not json"]);
    h.close();
  });

  it("herald publishes and triggers reach pusher-js; pusher client events reach herald", async () => {
    const p = client({ member: { user_id: "pp" } });
    const { channel } = await subscribe(p, "presence-mixed");
    const h = await heraldConnect(heraldUrl(gw.url, "hh", ["presence-mixed"]));
    await request(h, "subscribe", { stream_id: "presence-mixed" });
    const published = nextEvent(channel, "note");
    await request(h, "event.publish", {
      stream_id: "presence-mixed",
      type: "note",
      body: { a: 1 },
    });
    const ev = await published;
    expect(ev.data).toEqual({ a: 1 });
    expect(ev.meta?.user_id).toBe("hh");
    const triggered = nextEvent(channel, "blink");
    // event.trigger has no reply: it is ephemeral.
    h.send({
      type: "event.trigger",
      payload: { stream_id: "presence-mixed", type: "blink", body: "on" },
    });
    expect((await triggered).data).toBe("on");
    channel.trigger("client-wave", { hand: "left" });
    const wave = await h.next<Frame>((f) => f.payload?.type === "client-wave");
    expect(wave.payload).toMatchObject({ body: { hand: "left" }, user_id: "pp", ephemeral: true });
    h.close();
  });
});
