import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../src/dialects/pusher/http-sign.js";
import {
  BIG,
  publishUntilSlowClose,
  SLOW_CONSUMER_ENV,
  startTestGateway,
  TEST_APP,
  type TestGateway,
} from "./harness.js";
import { dataOf, isEvent, type PusherFrame, pusherServer, rawPusher } from "./pusher-client.js";
import { TestClient } from "./ws-client.js";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ env: { TIDINGS_MAX_FRAME_BYTES: "2048" } });
});
afterAll(async () => {
  await gw?.stop();
});

const sign = (socketId: string, channel: string, data?: unknown) =>
  pusherServer(gw).authorizeChannel(socketId, channel, data as never);

describe("pusher handshake", () => {
  it("sends connection_established with socket_id and activity_timeout as a data string", async () => {
    const c = await TestClient.connect(gw.url(`/app/${TEST_APP.key}?protocol=7`));
    const f = await c.next<PusherFrame>(isEvent("pusher:connection_established"));
    expect(typeof f.data).toBe("string");
    const data = dataOf(f) as { socket_id: string; activity_timeout: number };
    expect(data.socket_id).toMatch(/^[0-9]+\.[0-9]+$/);
    expect(data.activity_timeout).toBe(120);
    c.close();
  });

  it.each([
    ["an unknown app key", "/app/nope?protocol=7", 4001],
    ["no protocol", `/app/${TEST_APP.key}`, 4008],
    ["a malformed protocol", `/app/${TEST_APP.key}?protocol=seven`, 4006],
    ["protocol 6", `/app/${TEST_APP.key}?protocol=6`, 4007],
  ])("refuses %s (%s) with pusher:error and close %i", async (_what, path, code) => {
    const c = await TestClient.connect(gw.url(path));
    const err = await c.next<PusherFrame>(isEvent("pusher:error"));
    expect((err.data as { code: number }).code).toBe(code);
    expect((await c.waitClosed()).code).toBe(code);
  });

  it("refuses connections over the app's quota with 4004", async () => {
    await using small = await startTestGateway({ env: { TIDINGS_MAX_CONNECTIONS: "1" } });
    const first = await rawPusher(small);
    const c = await TestClient.connect(small.url(`/app/${TEST_APP.key}?protocol=7`));
    expect((await c.waitClosed()).code).toBe(4004);
    first.c.close();
  });

  it("answers pusher:ping with pusher:pong", async () => {
    const { c } = await rawPusher(gw);
    c.send({ event: "pusher:ping", data: {} });
    await c.next<PusherFrame>(isEvent("pusher:pong"));
    c.close();
  });
});

describe("pusher keep-alive", () => {
  it("pings after the activity timeout and closes with 4201 without a pong", async () => {
    await using quick = await startTestGateway({
      env: { TIDINGS_ACTIVITY_TIMEOUT: "5", TIDINGS_PONG_TIMEOUT: "1" },
    });
    const silent = await rawPusher(quick);
    const answering = await rawPusher(quick);
    await answering.c.next<PusherFrame>(isEvent("pusher:ping"), 8000);
    answering.c.send({ event: "pusher:pong", data: {} });
    await silent.c.next<PusherFrame>(isEvent("pusher:ping"), 8000);
    const err = await silent.c.next<PusherFrame>(isEvent("pusher:error"), 3000);
    expect((err.data as { code: number }).code).toBe(4201);
    expect((await silent.c.waitClosed()).code).toBe(4201);
    expect(answering.c.closed).toBeUndefined();
    answering.c.close();
  }, 20_000);
});

describe("pusher frames", () => {
  it("answers malformed frames with pusher:error and keeps the connection", async () => {
    const { c } = await rawPusher(gw);
    const bad = [
      "not json",
      "[]",
      '{"event":42}',
      '{"event":"pusher:subscribe","data":"nope"}',
      '{"event":"pusher:subscribe","data":{"channel":7}}',
      '{"event":"pusher:subscribe","data":{"channel":"x","auth":5}}',
      '{"event":"pusher:signin","data":{"auth":"a"}}',
      '{"event":"unknown-event"}',
      `{"event":"client-${"x".repeat(200)}","channel":"private-a","data":{}}`,
    ];
    for (const text of bad) {
      c.sendRaw(text);
      const err = await c.next<PusherFrame>(isEvent("pusher:error"));
      expect((err.data as { code: unknown }).code).toBeNull();
    }
    // A subscribe naming a bad channel is refused on that channel, where pusher-js waits.
    c.sendRaw('{"event":"pusher:subscribe","data":{"channel":"bad name!"}}');
    const refused = await c.next<PusherFrame>(isEvent("pusher:subscription_error", "bad name!"));
    expect(refused.data).toMatchObject({ type: "InvalidChannelName", status: 4009 });
    c.sendRaw(Buffer.from([0xff, 0xfe]), true);
    expect(
      ((await c.next<PusherFrame>(isEvent("pusher:error"))).data as { message: string }).message,
    ).toMatch(/UTF-8/);
    // data sent as a JSON string is accepted, as some clients send it.
    c.send({ event: "pusher:subscribe", data: JSON.stringify({ channel: "as-string" }) });
    await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", "as-string"));
    c.close();
  });

  it("answers a frame over the size limit with 4301 and keeps the connection", async () => {
    const { c } = await rawPusher(gw);
    c.send({ event: "client-big", channel: "private-a", data: "x".repeat(3000) });
    const err = await c.next<PusherFrame>(isEvent("pusher:error"));
    expect((err.data as { code: number }).code).toBe(4301);
    c.send({ event: "pusher:ping", data: {} });
    await c.next<PusherFrame>(isEvent("pusher:pong"));
    c.close();
  });

  it("refuses client events on encrypted channels and when not subscribed", async () => {
    const { c, socketId } = await rawPusher(gw);
    c.send({ event: "client-x", channel: "private-elsewhere", data: {} });
    const notSub = await c.next<PusherFrame>(isEvent("pusher:error"));
    expect((notSub.data as { message: string }).message).toMatch(/Not subscribed/);
    const ch = "private-encrypted-box";
    c.send({ event: "pusher:subscribe", data: { channel: ch, ...sign(socketId, ch) } });
    await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", ch));
    c.send({ event: "client-x", channel: ch, data: {} });
    const enc = await c.next<PusherFrame>(isEvent("pusher:error"));
    expect((enc.data as { message: string }).message).toMatch(/not allowed/);
    c.close();
  });

  it("refuses a missing signature and presence channel_data without user_id", async () => {
    const { c, socketId } = await rawPusher(gw);
    c.send({ event: "pusher:subscribe", data: { channel: "private-x" } });
    const missing = await c.next<PusherFrame>(isEvent("pusher:subscription_error", "private-x"));
    expect(missing.data).toMatchObject({ type: "AuthError", status: 401 });
    const channelData = JSON.stringify({ name: "no id" });
    const auth = `${TEST_APP.key}:${(sign(socketId, "presence-x", { user_id: "u" }).auth ?? "").split(":")[1]}`;
    c.send({
      event: "pusher:subscribe",
      data: { channel: "presence-x", auth, channel_data: channelData },
    });
    const bad = await c.next<PusherFrame>(isEvent("pusher:subscription_error", "presence-x"));
    expect(bad.data).toMatchObject({ type: "AuthError" });
    c.close();
  });

  it("accepts a numeric presence user_id and unsubscribes cleanly", async () => {
    const { c, socketId } = await rawPusher(gw);
    const ch = "presence-numeric";
    const a = sign(socketId, ch, { user_id: 42 });
    c.send({ event: "pusher:subscribe", data: { channel: ch, ...a } });
    const ok = await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", ch));
    expect(dataOf(ok)).toEqual({ presence: { ids: ["42"], hash: { "42": null }, count: 1 } });
    c.send({ event: "pusher:unsubscribe", data: { channel: ch } });
    await expect
      .poll(async () => (await pusherServer(gw).get({ path: `/channels/${ch}` })).json())
      .toEqual({ occupied: false });
    c.close();
  });

  it("refuses a bad pusher:signin with 4009", async () => {
    const { c } = await rawPusher(gw);
    c.send({
      event: "pusher:signin",
      data: { auth: `${TEST_APP.key}:00`, user_data: '{"id":"x"}' },
    });
    const err = await c.next<PusherFrame>(isEvent("pusher:error"));
    expect((err.data as { code: number }).code).toBe(4009);
    expect((await c.waitClosed()).code).toBe(4009);
  });

  it("answers frames over the message rate with 4301 and keeps the connection", async () => {
    const { c } = await rawPusher(gw);
    for (let i = 0; i < 300; i++) c.send({ event: "pusher:ping", data: {} });
    const err = await c.next<PusherFrame>(isEvent("pusher:error"));
    expect(err.data).toEqual({ code: 4301, message: "Client sent too many messages" });
    expect(c.closed).toBeUndefined();
    c.close();
  });

  it("survives thousands of random frames and keeps serving others", async () => {
    await using fuzz = await startTestGateway({ env: { TIDINGS_MAX_MESSAGE_RATE: "100000" } });
    const victim = await rawPusher(fuzz);
    const bystander = await rawPusher(fuzz);
    bystander.c.send({ event: "pusher:subscribe", data: { channel: "fuzz-watch" } });
    await bystander.c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded"));
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const pieces = [
      '{"event":',
      '"pusher:subscribe"',
      '"client-a"',
      '"data":',
      "{",
      "}",
      "[",
      "]",
      '"channel":"private-z"',
      ",",
      "null",
      "1e999",
      '"\\u0000"',
      '"pusher:signin"',
      '"pusher:unsubscribe"',
    ];
    for (let i = 0; i < 3000; i++) {
      let text = "";
      const n = rnd() % 12;
      for (let j = 0; j < n; j++) text += pieces[rnd() % pieces.length];
      if (rnd() % 4 === 0)
        text = Buffer.from(Array.from({ length: rnd() % 64 }, () => rnd() % 256)).toString(
          "latin1",
        );
      victim.c.sendRaw(text);
    }
    victim.c.send({ event: "pusher:ping", data: {} });
    await victim.c.next<PusherFrame>(isEvent("pusher:pong"), 10_000);
    await pusherServer(fuzz).trigger("fuzz-watch", "still", { up: true });
    const got = await bystander.c.next<PusherFrame>(isEvent("still"));
    expect(dataOf(got)).toEqual({ up: true });
    victim.c.close();
    bystander.c.close();
  });
});

describe("pusher capacity and drain", () => {
  it("closes a consumer that stops reading with 4100", async () => {
    await using small = await startTestGateway({ env: SLOW_CONSUMER_ENV });
    const slow = await rawPusher(small);
    slow.c.send({ event: "pusher:subscribe", data: { channel: "firehose" } });
    await slow.c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded"));
    slow.c.pauseReading();
    const server = pusherServer(small);
    expect(await publishUntilSlowClose(small, () => server.trigger("firehose", "n", BIG))).toBe(
      true,
    );
    const m = await small.gateway.metrics.slowConsumerCloses.get();
    expect(m.values.some((v) => v.labels.dialect === "pusher" && v.value > 0)).toBe(true);
    slow.c.resumeReading();
    expect((await slow.c.waitClosed()).code).toBe(4100);
  });

  it("asks clients to reconnect with 4200 when the gateway drains", async () => {
    const other = await startTestGateway();
    const { c } = await rawPusher(other);
    const stopping = other.stop();
    const err = await c.next<PusherFrame>(isEvent("pusher:error"));
    expect((err.data as { code: number }).code).toBe(4200);
    expect((await c.waitClosed()).code).toBe(4200);
    await stopping;
  });
});

describe("pusher HTTP signing edge cases", () => {
  const app = { ...TEST_APP, apiKeys: [], allowedOrigins: [], webhooks: [], limits: {} as never };
  const post = (path: string, body: string, at: number, tamper?: (q: URLSearchParams) => void) => {
    const q = signRequest(app, "POST", path, {}, body, at);
    tamper?.(q);
    return fetch(gw.http(`${path}?${q}`), { method: "POST", body });
  };
  const now = () => Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ name: "e", channel: "sig", data: "{}" });

  it("accepts a hand-signed request and refuses stale timestamps and body changes", async () => {
    expect((await post(`/apps/${TEST_APP.id}/events`, body, now())).status).toBe(200);
    const stale = await post(`/apps/${TEST_APP.id}/events`, body, now() - 601);
    expect(stale.status).toBe(401);
    expect(await stale.text()).toMatch(/Timestamp expired/);
    const md5 = await post(`/apps/${TEST_APP.id}/events`, body, now(), (q) =>
      q.set("body_md5", "0".repeat(32)),
    );
    expect(md5.status).toBe(401);
    const unsigned = await fetch(gw.http(`/apps/${TEST_APP.id}/channels`));
    expect(unsigned.status).toBe(401);
  });

  it("refuses bodies over the limit with 413 and malformed JSON with 400", async () => {
    const big = JSON.stringify({ name: "e", channel: "sig", data: "x".repeat(60_000) });
    expect((await post(`/apps/${TEST_APP.id}/events`, big, now())).status).toBe(413);
    const bad = await post(`/apps/${TEST_APP.id}/events`, "{nope", now());
    expect(bad.status).toBe(400);
  });

  it("lists subscription counts and refuses subscriptions past the limit", async () => {
    await using small = await startTestGateway({ env: { TIDINGS_MAX_SUBSCRIPTIONS: "1" } });
    const { c } = await rawPusher(small);
    c.send({ event: "pusher:subscribe", data: { channel: "only-one" } });
    await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", "only-one"));
    c.send({ event: "pusher:subscribe", data: { channel: "second" } });
    const err = await c.next<PusherFrame>(isEvent("pusher:subscription_error", "second"));
    expect(err.data).toMatchObject({ type: "LimitReached", status: 4100 });
    const res = await pusherServer(small).get({
      path: "/channels",
      params: { info: "subscription_count" },
    });
    expect(await res.json()).toEqual({ channels: { "only-one": { subscription_count: 1 } } });
    c.close();
  });
});
