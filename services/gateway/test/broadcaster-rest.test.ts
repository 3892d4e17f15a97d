import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  broadcasterConnect,
  broadcasterJwt,
  call,
  isMessage,
  type Notification,
} from "./broadcaster-client.js";
import { BrokenEngine } from "./broken-engine.js";
import {
  BIG,
  publishUntilSlowClose,
  SLOW_CONSUMER_ENV,
  startTestGateway,
  TEST_APP,
  type TestGateway,
} from "./harness.js";
import { TestClient } from "./ws-client.js";

const OTHER_APP = {
  id: "other-id",
  key: "other-key",
  secret: "other-secret",
  apiKeys: ["other-api-key"],
};

let gw: TestGateway;
const engine = new BrokenEngine();
beforeAll(async () => {
  gw = await startTestGateway({
    engine,
    env: {
      TIDINGS_APPS: JSON.stringify([TEST_APP, OTHER_APP]),
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

describe("broadcaster REST", () => {
  it("publishes with an API key; subscribers get the message", async () => {
    const c = await connect();
    await call(c, "subscribe", { channel: "rest" });
    const r = await rest({ channel: "rest", event: "server", payload: { ok: true } });
    expect(r.status).toBe(200);
    expect(r.body.id).toMatch(/^evt_/);
    expect(r.body.createTime).toMatch(RFC3339);
    expect((await c.next<Notification>(isMessage())).params).toEqual({
      id: r.body.id,
      seq: 1,
      createTime: r.body.createTime,
      channel: "rest",
      event: "server",
      payload: { ok: true },
    });
    c.close();
  });

  it("returns the first id for a repeated Idempotency-Key and delivers once", async () => {
    const c = await connect();
    await call(c, "subscribe", { channel: "idem" });
    const headers = { "idempotency-key": "retry-1" };
    const first = await rest({ channel: "idem", event: "e", payload: 1 }, { headers });
    const again = await rest({ channel: "idem", event: "e", payload: 2 }, { headers });
    expect(again).toEqual(first);
    await rest({ channel: "idem", event: "e", payload: 3 });
    await c.next<Notification>(isMessage((p) => p.payload === 3));
    expect(c.all<Notification>(isMessage()).map((f) => f.params.payload)).toEqual([1, 3]);
    c.close();
  });

  it.each([
    ["no Authorization", {}, { apiKey: null }, 401, "Unauthenticated"],
    ["an unknown key", {}, { apiKey: "nope" }, 401, "Unauthenticated"],
    [
      "the secret of an app that has apiKeys",
      {},
      { key: "other-key", apiKey: "other-secret" },
      401,
      "Unauthenticated",
    ],
    [
      "another app's key",
      {},
      { key: "other-key", apiKey: TEST_APP.secret },
      403,
      "PermissionDenied",
    ],
    ["an unknown app", {}, { key: "ghost" }, 404, "NotFound"],
    ["a missing event", { channel: "c" }, {}, 400, "InvalidArgument"],
    ["a bad channel", { channel: "a b", event: "e" }, {}, 400, "InvalidArgument"],
    ["invalid JSON", "{nope", {}, 400, "InvalidArgument"],
    [
      "a body over the frame limit",
      { channel: "c", event: "e", payload: "x".repeat(5000) },
      {},
      413,
      "InvalidArgument",
    ],
    ["a storage failure", { channel: "broken-2", event: "e" }, {}, 500, "Internal"],
  ] as const)("answers %s with its status and code", async (_what, body, opts, status, code) => {
    const r = await rest(body, opts);
    expect(r.status).toBe(status);
    expect((r.body.error as { code: string }).code).toBe(code);
  });

  it("accepts a listed API key", async () => {
    const r = await rest(
      { channel: "c", event: "e" },
      { key: "other-key", apiKey: "other-api-key" },
    );
    expect(r.status).toBe(200);
  });
});

describe("broadcaster close codes", () => {
  it("asks clients to reconnect with 1012 when the gateway stops", async () => {
    const own = await startTestGateway();
    const c = await broadcasterConnect(own.url, broadcasterJwt());
    await own.stop();
    expect((await c.waitClosed()).code).toBe(1012);
  });

  it("closes with 1013 when the app is at its connection quota", async () => {
    await using own = await startTestGateway({ env: { TIDINGS_MAX_CONNECTIONS: "1" } });
    const first = await broadcasterConnect(own.url, broadcasterJwt());
    const second = await TestClient.connect(own.url(`/broadcaster/${TEST_APP.key}`));
    expect((await second.waitClosed()).code).toBe(1013);
    first.close();
  });

  it("closes a subscriber that stops reading with 4008", async () => {
    await using small = await startTestGateway({ env: SLOW_CONSUMER_ENV });
    const slow = await broadcasterConnect(small.url, broadcasterJwt());
    await call(slow, "subscribe", { channel: "big" });
    // Stop reading: the kernel buffers fill, then the gateway's queue grows.
    slow.pauseReading();
    const pub = await broadcasterConnect(small.url, broadcasterJwt());
    const publish = () => call(pub, "publish", { channel: "big", event: "n", payload: BIG });
    expect(await publishUntilSlowClose(small, publish)).toBe(true);
    slow.resumeReading();
    expect((await slow.waitClosed()).code).toBe(4008);
    pub.close();
  });
});
