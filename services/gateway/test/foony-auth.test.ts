import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appKeyAuth, type FoonyFrame, foonyConnect, foonyJwt, isT, req } from "./foony-client.js";
import {
  BIG,
  publishUntilSlowClose,
  SLOW_CONSUMER_ENV,
  startTestGateway,
  TEST_APP,
  type TestGateway,
} from "./harness.js";
import { TestClient } from "./ws-client.js";

const LOCKED_APP = {
  id: "locked-id",
  key: "locked-key",
  secret: "locked-secret",
  apiKeys: ["locked-api-key"],
  allowedOrigins: ["https://good.example"],
};

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({
    env: {
      TIDINGS_APPS: JSON.stringify([TEST_APP, LOCKED_APP]),
      // The smallest allowed: a silent client is closed after 10 s.
      TIDINGS_ACTIVITY_TIMEOUT: "5",
    },
  });
});
afterAll(async () => {
  await gw?.stop();
});

const server = (clientId?: string) => foonyConnect(gw.url, appKeyAuth(clientId));

/** Opens /realtime, sends `first`, expects `err {code}` and a close with `closeCode`. */
async function refused(first: unknown, code: number, closeCode: number, origin?: string) {
  const c = await TestClient.connect(gw.url("/realtime"), origin ? { origin } : {});
  if (first !== undefined) c.send(first);
  const err = await c.next<FoonyFrame>(isT("err"), 12_000);
  expect(err.code).toBe(code);
  expect((await c.waitClosed(12_000)).code).toBe(closeCode);
  return err;
}

describe("foony auth", () => {
  it("accepts APP_KEY:SECRET with the frame's clientId or the connection id", async () => {
    const named = await server("backend");
    expect(named.connected).toMatchObject({ keepAliveMs: 5000, clientId: "backend" });
    expect(named.connected.connectionId).toMatch(/^\d+\.\d+$/);
    const anon = await server();
    expect(anon.connected.clientId).toBe(anon.connected.connectionId);
    for (const c of [named, anon]) c.close();
  });

  it("accepts a JWT naming the app by kid or by iss; clientId claim over sub", async () => {
    const bySub = await foonyConnect(gw.url, foonyJwt({ sub: "ann" }));
    expect(bySub.connected.clientId).toBe("ann");
    const byIss = await foonyConnect(
      gw.url,
      foonyJwt({ sub: "ann", clientId: "ann-2" }, { via: "iss" }),
    );
    expect(byIss.connected.clientId).toBe("ann-2");
    bySub.close();
    byIss.close();
  });

  it("holds frames sent after auth until connected", async () => {
    const c = await TestClient.connect(gw.url("/realtime"));
    c.send({ t: "auth", token: await foonyJwt({ sub: "eager" }) });
    c.send({ t: "sub", channel: "eager", id: 1 });
    c.send({ t: "ping" });
    await c.next<FoonyFrame>(isT("connected"));
    expect(await c.next<FoonyFrame>(isT("ack"))).toEqual({ t: "ack", id: 1 });
    await c.next<FoonyFrame>(isT("pong"));
    c.close();
  });

  it.each([
    ["a non-auth first frame", { t: "ping" }],
    ["an unparsable first frame", "{nope"],
    ["an unknown app key", { t: "auth", key: "ghost:app-secret" }],
    ["a wrong secret", { t: "auth", key: `${TEST_APP.key}:wrong` }],
    ["a key without a colon", { t: "auth", key: TEST_APP.key }],
    [
      "a token for an unknown app",
      async () => ({ t: "auth", token: await foonyJwt({}, { key: "ghost" }) }),
    ],
    [
      "a token signed with another secret",
      async () => ({ t: "auth", token: await foonyJwt({}, { secret: "x" }) }),
    ],
    [
      "a token that names no app",
      async () => ({ t: "auth", token: await foonyJwt({}, { via: "none" }) }),
    ],
    ["a malformed token", { t: "auth", token: "not-a-jwt" }],
    [
      "a bad capability claim",
      async () => ({ t: "auth", token: await foonyJwt({ capability: { "*": ["fly"] } }) }),
    ],
    [
      "a clientId that is not the token's",
      async () => ({ t: "auth", token: await foonyJwt({ sub: "ann" }), clientId: "bob" }),
    ],
  ])("refuses %s with 40101 and close 4001", async (_what, first) => {
    const frame = typeof first === "function" ? await first() : first;
    await refused(frame, 40101, 4001);
  });

  it("refuses an expired token with 40102 and close 4002", async () => {
    const err = await refused(
      { t: "auth", token: await foonyJwt({}, { ttlSec: -10 }) },
      40102,
      4002,
    );
    expect(err.message).toBe("token expired");
  });

  it("checks the app's allowed origins at auth; accepts its API keys", async () => {
    await refused(
      { t: "auth", key: "locked-key:locked-secret" },
      40101,
      4001,
      "https://evil.example",
    );
    const ok = await TestClient.connect(gw.url("/realtime"), { origin: "https://good.example" });
    // An API key listed for the app works as the secret.
    ok.send({ t: "auth", key: "locked-key:locked-api-key" });
    await ok.next<FoonyFrame>(isT("connected"));
    ok.close();
  });

  it("sends 40102 and closes with 4002 when the token runs out while connected", async () => {
    const c = await foonyConnect(gw.url, foonyJwt({ sub: "brief" }, { ttlSec: 2 }));
    const err = await c.next<FoonyFrame>(isT("err"), 5000);
    expect(err).toEqual({ t: "err", code: 40102, message: "token expired" });
    expect((await c.waitClosed()).code).toBe(4002);
  });

  it("answers a second auth with 40001 and stays connected", async () => {
    const c = await server();
    c.send(appKeyAuth());
    expect((await c.next<FoonyFrame>(isT("err"))).code).toBe(40001);
    c.send({ t: "ping" });
    await c.next<FoonyFrame>(isT("pong"));
    c.close();
  });
});

describe.concurrent("foony timeouts", () => {
  it("closes a connection that sends no auth within 10 s", async () => {
    const err = await refused(undefined, 40101, 4001);
    expect(err.message).toBe("no auth within 10 s");
  });

  it("closes a client silent for 2 x keepAliveMs; one that pings stays", async () => {
    const silent = await server("silent");
    const chatty = await server("chatty");
    const pinger = setInterval(() => chatty.send({ t: "ping" }), 2000);
    try {
      const started = Date.now();
      expect((await silent.waitClosed(15_000)).code).toBe(4003);
      expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
      expect(chatty.closed).toBeUndefined();
    } finally {
      clearInterval(pinger);
      chatty.close();
    }
  });
});

describe("foony close codes", () => {
  it("asks clients to reconnect with 1012 when the gateway stops", async () => {
    const own = await startTestGateway();
    const c = await foonyConnect(own.url, appKeyAuth());
    await own.stop();
    expect((await c.waitClosed()).code).toBe(1012);
  });

  it("refuses a connection over the app's quota with 50000 and 1013", async () => {
    await using own = await startTestGateway({ env: { TIDINGS_MAX_CONNECTIONS: "1" } });
    const first = await foonyConnect(own.url, appKeyAuth());
    const second = await TestClient.connect(own.url("/realtime"));
    second.send(appKeyAuth());
    expect((await second.next<FoonyFrame>(isT("err"))).code).toBe(50000);
    expect((await second.waitClosed()).code).toBe(1013);
    first.close();
  });

  it("closes a subscriber that stops reading with 4008", async () => {
    await using small = await startTestGateway({ env: SLOW_CONSUMER_ENV });
    const slow = await foonyConnect(small.url, appKeyAuth());
    await req(slow, { t: "sub", channel: "big" });
    slow.pauseReading();
    const pub = await foonyConnect(small.url, appKeyAuth());
    const publish = () => req(pub, { t: "pub", channel: "big", name: "n", data: BIG });
    expect(await publishUntilSlowClose(small, publish)).toBe(true);
    slow.resumeReading();
    expect((await slow.waitClosed()).code).toBe(4008);
    pub.close();
  });
});
