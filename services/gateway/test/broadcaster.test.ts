import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectDefined } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import {
  broadcasterConnect,
  broadcasterJwt,
  call,
  isMessage,
  type Notification,
  type Reply,
} from "./broadcaster-client.js";
import { BrokenEngine } from "./broken-engine.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { TestClient } from "./ws-client.js";

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

const connect = (claims: Record<string, unknown> = {}) =>
  broadcasterConnect(gw.url, broadcasterJwt(claims));
const codeOf = (r: Reply) => r.error?.code;
interface Unsubscribed {
  method: "unsubscribed";
  params: { channel: string; subscriptionId: string; error: { code: string; message: string } };
}
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

async function rest(
  body: unknown,
  { key = TEST_APP.key, apiKey = TEST_APP.secret as string | null, headers = {} } = {},
) {
  const res = await fetch(gw.http(`/broadcaster/${key}/publish`), {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }),
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("broadcaster auth", () => {
  it("answers ping without auth and refuses other methods until auth", async () => {
    const c = await TestClient.connect(gw.url(`/broadcaster/${TEST_APP.key}`));
    expect((await call(c, "ping")).result?.timestamp).toMatch(RFC3339);
    const r = await call(c, "subscribe", { channel: "news" });
    expect(r.error).toEqual({ code: "Unauthenticated", message: "send auth first" });
    expect((await call(c, "auth", { token: await broadcasterJwt() })).result).toEqual({
      success: true,
    });
    expect((await call(c, "subscribe", { channel: "news" })).result?.subscriptionId).toBe("sub-1");
    c.close();
  });

  it("closes 4001 for an unknown app key", async () => {
    const c = await TestClient.connect(gw.url("/broadcaster/nope"));
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it.each([
    ["a wrong secret", () => broadcasterJwt({}, { secret: "not-the-secret" })],
    ["another audience", () => broadcasterJwt({}, { aud: "herald" })],
    ["an iat in the future", () => broadcasterJwt({}, { iatOffsetSec: 300 })],
    ["an expiry beyond the leeway", () => broadcasterJwt({}, { ttlSec: -120 })],
    ["an unknown scope", () => broadcasterJwt({ scope: ["subscribe", "admin"] })],
    ["channels that are not a list", () => broadcasterJwt({ authorizedChannels: "news" })],
    ["a non-JWT", async () => "garbage"],
  ])("rejects %s with Unauthenticated and keeps the socket", async (_what, token) => {
    const c = await TestClient.connect(gw.url(`/broadcaster/${TEST_APP.key}`));
    expect(codeOf(await call(c, "auth", { token: await token() }))).toBe("Unauthenticated");
    expect(codeOf(await call(c, "publish", { channel: "x", event: "e" }))).toBe("Unauthenticated");
    expect((await call(c, "ping")).result).toBeDefined();
    c.close();
  });

  it("accepts a token inside the 60 s leeway and a pipelined subscribe sees its outcome", async () => {
    const c = await TestClient.connect(gw.url(`/broadcaster/${TEST_APP.key}`));
    const token = await broadcasterJwt({ scope: "subscribe" }, { ttlSec: -30 });
    c.send({ id: "a", method: "auth", params: { token } });
    c.send({ id: "s", method: "subscribe", params: { channel: "pipelined" } });
    expect((await c.next<Reply>((f) => f.requestId === "a")).result).toEqual({ success: true });
    expect((await c.next<Reply>((f) => f.requestId === "s")).result?.subscriptionId).toBe("sub-1");
    c.close();
  });

  it("refreshes with the same sub, refuses another sub with FailedPrecondition", async () => {
    const c = await connect({ sub: "ann" });
    expect((await call(c, "auth", { token: await broadcasterJwt({ sub: "ann" }) })).result).toEqual(
      { success: true },
    );
    const other = await call(c, "auth", { token: await broadcasterJwt({ sub: "bob" }) });
    expect(codeOf(other)).toBe("FailedPrecondition");
    c.close();
  });

  it.each([
    ["no longer lists the channel", { authorizedChannels: ["revoke-a-*"] }, "is not authorized"],
    ["lacks the subscribe scope", { scope: ["publish"] }, "lacks the subscribe scope"],
  ])(
    "a refresh whose token %s ends those subscriptions with unsubscribed",
    async (_what, claims, why) => {
      const tag = `${Math.random().toString(36).slice(2, 8)}`;
      const [a, b] = [`revoke-a-${tag}`, `revoke-b-${tag}`];
      const c = await connect({ sub: `rev-${tag}` });
      const subA = (await call(c, "subscribe", { channel: a })).result?.subscriptionId;
      const subB = (await call(c, "subscribe", { channel: b })).result?.subscriptionId;
      const refreshed = await broadcasterJwt({ sub: `rev-${tag}`, ...claims });
      expect((await call(c, "auth", { token: refreshed })).result).toEqual({ success: true });

      const dropped = c.all<Unsubscribed>((f) => f.method === "unsubscribed");
      const keepsA = !("scope" in claims);
      expect(dropped.map((f) => f.params.channel).sort()).toEqual(keepsA ? [b] : [a, b].sort());
      const forB = expectDefined(
        dropped.find((f) => f.params.channel === b),
        "the unsubscribed for b",
      );
      expect(forB.params.subscriptionId).toBe(subB);
      expect(forB.params.error.code).toBe("PermissionDenied");
      expect(forB.params.error.message).toContain(why);
      if (!keepsA)
        expect(dropped.find((f) => f.params.channel === a)?.params.subscriptionId).toBe(subA);

      for (let i = 0; i < 3; i++) {
        expect((await rest({ channel: b, event: "after", payload: i })).status).toBe(200);
        expect((await rest({ channel: a, event: "after", payload: i })).status).toBe(200);
      }
      // A pong is queued behind anything the publishes above delivered.
      await call(c, "ping");
      const got = (ch: string) => c.all<Notification>(isMessage((p) => p.channel === ch)).length;
      expect(got(b)).toBe(0);
      expect(got(a)).toBe(keepsA ? 3 : 0);
      expect(codeOf(await call(c, "unsubscribe", { channel: b }))).toBe("NotFound");
      c.close();
    },
  );

  it("drops subscriptions when the token expires; requests get Unauthenticated until a refresh", async () => {
    // exp 58 s ago is still inside the leeway: the grant runs out about 2 s from now.
    const c = await broadcasterConnect(gw.url, broadcasterJwt({ sub: "eve" }, { ttlSec: -58 }));
    expect((await call(c, "subscribe", { channel: "expiring" })).result).toBeDefined();
    await waitFor(
      async () => codeOf(await call(c, "subscribe", { channel: "probe" })) === "Unauthenticated",
      { what: "expiry", timeoutMs: 8000, intervalMs: 200 },
    );
    expect((await rest({ channel: "expiring", event: "after", payload: 1 })).status).toBe(200);
    // The pong is queued behind any message the publish would have delivered.
    await call(c, "ping");
    expect(c.all<Notification>(isMessage())).toEqual([]);
    // (The probe loop may have subscribed "probe" before expiry too; it is dropped alike.)
    expect(
      c.all<Unsubscribed>((f) => f.method === "unsubscribed" && f.params.channel === "expiring"),
    ).toEqual([
      {
        method: "unsubscribed",
        params: {
          channel: "expiring",
          subscriptionId: "sub-1",
          error: {
            code: "Unauthenticated",
            message: "token expired; send auth with a fresh token",
          },
        },
      },
    ]);
    expect((await call(c, "auth", { token: await broadcasterJwt({ sub: "eve" }) })).result).toEqual(
      {
        success: true,
      },
    );
    expect(codeOf(await call(c, "unsubscribe", { channel: "expiring" }))).toBe("NotFound");
    c.close();
  });
});

describe("broadcaster subscriptions", () => {
  it("answers subscribe with an id and a timestamp; AlreadyExists, NotFound on repeats", async () => {
    const c = await connect();
    const r = await call(c, "subscribe", { channel: "dup" });
    expect(r.result?.subscriptionId).toBe("sub-1");
    expect(r.result?.timestamp).toMatch(RFC3339);
    expect(codeOf(await call(c, "subscribe", { channel: "dup" }))).toBe("AlreadyExists");
    expect((await call(c, "unsubscribe", { channel: "dup" })).result).toEqual({ success: true });
    expect(codeOf(await call(c, "unsubscribe", { channel: "dup" }))).toBe("NotFound");
    c.close();
  });

  it("an unsubscribe sent right behind its subscribe is answered and wins", async () => {
    const c = await connect();
    c.send({ id: "s", method: "subscribe", params: { channel: "flicker" } });
    c.send({ id: "u", method: "unsubscribe", params: { channel: "flicker" } });
    expect((await c.next<Reply>((f) => f.requestId === "s")).result?.subscriptionId).toBeDefined();
    expect((await c.next<Reply>((f) => f.requestId === "u")).result).toEqual({ success: true });
    await call(c, "publish", { channel: "flicker", event: "e", payload: 1 });
    await call(c, "ping");
    expect(c.all<Notification>(isMessage())).toEqual([]);
    c.close();
  });

  it("checks authorizedChannels (with * prefixes) and scopes", async () => {
    const c = await connect({ authorizedChannels: ["team-*", "lobby"], scope: ["subscribe"] });
    expect((await call(c, "subscribe", { channel: "team-red" })).result).toBeDefined();
    expect((await call(c, "subscribe", { channel: "lobby" })).result).toBeDefined();
    const denied = await call(c, "subscribe", { channel: "admin" });
    expect(denied.error).toEqual({
      code: "PermissionDenied",
      message: "channel admin is not authorized",
    });
    const noScope = await call(c, "publish", { channel: "lobby", event: "e", payload: 1 });
    expect(noScope.error?.code).toBe("PermissionDenied");
    expect(noScope.error?.message).toMatch(/publish scope/);
    const pubOnly = await connect({ scope: ["publish"] });
    expect(codeOf(await call(pubOnly, "subscribe", { channel: "lobby" }))).toBe("PermissionDenied");
    c.close();
    pubOnly.close();
  });

  it("refuses invalid channel names with InvalidArgument", async () => {
    const c = await connect();
    for (const channel of ["", "has space", "x".repeat(201), "#hash", 42]) {
      expect(codeOf(await call(c, "subscribe", { channel }))).toBe("InvalidArgument");
      expect(codeOf(await call(c, "publish", { channel, event: "e" }))).toBe("InvalidArgument");
    }
    c.close();
  });

  it("limits subscriptions per connection with FailedPrecondition", async () => {
    const c = await connect();
    for (const ch of ["l1", "l2", "l3"])
      expect((await call(c, "subscribe", { channel: ch })).result).toBeDefined();
    expect(codeOf(await call(c, "subscribe", { channel: "l4" }))).toBe("FailedPrecondition");
    c.close();
  });
});

describe("broadcaster messages", () => {
  it("delivers to every subscriber, publisher included, with seq counted per subscription", async () => {
    const a = await connect({ sub: "alice" });
    const b = await connect({ sub: "bob" });
    await call(a, "subscribe", { channel: "room" });
    const p1 = await call(a, "publish", { channel: "room", event: "first", payload: { n: 1 } });
    expect(p1.result?.id).toMatch(/^evt_/);
    expect(p1.result?.createTime).toMatch(RFC3339);
    const own = await a.next<Notification>(isMessage());
    expect(own.params).toEqual({
      id: p1.result?.id,
      seq: 1,
      createTime: p1.result?.createTime,
      channel: "room",
      event: "first",
      payload: { n: 1 },
    });
    await call(b, "subscribe", { channel: "room" });
    await call(b, "publish", { channel: "room", event: "second", payload: "two" });
    expect((await a.next<Notification>(isMessage())).params).toMatchObject({
      seq: 2,
      event: "second",
    });
    // b's subscription started after the first message: its own count starts at 1.
    expect((await b.next<Notification>(isMessage())).params).toMatchObject({
      seq: 1,
      event: "second",
      payload: "two",
    });
    await call(a, "unsubscribe", { channel: "room" });
    await call(a, "subscribe", { channel: "room" });
    await call(a, "publish", { channel: "room", event: "third", payload: null });
    expect((await a.next<Notification>(isMessage())).params).toMatchObject({
      seq: 1,
      event: "third",
    });
    a.close();
    b.close();
  });

  it("answers Internal when storage fails, and stays up", async () => {
    const c = await connect();
    const r = await call(c, "publish", { channel: "broken-1", event: "e", payload: 1 });
    expect(r.error).toEqual({ code: "Internal", message: "internal error" });
    expect((await call(c, "ping")).result).toBeDefined();
    c.close();
  });
});

describe("broadcaster malformed frames", () => {
  it("answers random, truncated, binary and oversized frames with InvalidArgument; others unaffected", async () => {
    const bad = await connect();
    const good = await connect();
    await call(good, "subscribe", { channel: "steady" });
    const valid = JSON.stringify({
      id: 99,
      method: "publish",
      params: { channel: "steady", event: "e", payload: [1, 2, 3] },
    });
    const frames: (string | Buffer)[] = [
      "",
      "null",
      "{}",
      '{"id":1}',
      '{"id":1,"method":7}',
      '{"id":[],"method":"ping"}',
      "\u0000\u0001\u0002",
      "x".repeat(5000),
      Buffer.from([0xff, 0xfe, 0x00, 0x80]),
    ];
    for (let i = 1; i < valid.length; i += 7) frames.push(valid.slice(0, i));
    let seed = 7;
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
    const errors = () => bad.all<Reply>((f) => f.error !== undefined);
    await waitFor(() => errors().length === frames.length, { what: "an error per frame" });
    expect(new Set(errors().map((e) => e.error?.code))).toEqual(new Set(["InvalidArgument"]));
    expect(errors().some((e) => e.error?.message === "frame too large")).toBe(true);
    expect(errors().some((e) => e.error?.message === "frame is not valid UTF-8")).toBe(true);
    expect((await call(bad, "ping")).result).toBeDefined();
    await call(bad, "publish", { channel: "steady", event: "still", payload: true });
    expect((await good.next<Notification>(isMessage())).params.event).toBe("still");
    bad.close();
    good.close();
  });
});

describe("broadcaster interop with herald", () => {
  it("maps herald type/body/event_id to event/payload/id and back", async () => {
    const b = await connect({ sub: "bc-user" });
    await call(b, "subscribe", { channel: "mixed" });
    const h = await heraldConnect(heraldUrl(gw.url, "u1", ["mixed"]));
    await request(h, "subscribe", { stream_id: "mixed" });

    const ack = await request(h, "event.publish", {
      stream_id: "mixed",
      type: "from-herald",
      body: { x: 1 },
    });
    const got = await b.next<Notification>(isMessage());
    expect(got.params).toMatchObject({
      id: ack.payload.event_id,
      seq: 1,
      channel: "mixed",
      event: "from-herald",
      payload: { x: 1 },
    });

    const pub = await call(b, "publish", { channel: "mixed", event: "from-bc", payload: [true] });
    const ev = await h.next<Frame>(isType("event.new", (p) => p.type === "from-bc"));
    expect(ev.payload).toMatchObject({
      event_id: pub.result?.id,
      stream_id: "mixed",
      type: "from-bc",
      body: [true],
      user_id: "bc-user",
    });
    expect(ev.payload.created_at).toBe(pub.result?.createTime);
    b.close();
    h.close();
  });
});
