import { afterAll, beforeAll, expect, it } from "vitest";
import { broadcasterJwt, call } from "./broadcaster-client.js";
import { chatToken } from "./chat-client.js";
import { type FoonyFrame, foonyJwt } from "./foony-client.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { type Frame, heraldJwt, heraldUrl } from "./herald-client.js";
import { isEvent, type PusherFrame, pusherServer, rawPusher } from "./pusher-client.js";
import { TestClient } from "./ws-client.js";

// User ids become NATS subject tokens and KV keys: every dialect refuses an id
// too long to carry or one with control characters, at its own auth step.
const LONG = "u".repeat(201);
const CONTROL = "a\u0001b";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(() => gw.stop());

it.each([LONG, CONTROL])("herald refuses user id %#", async (id) => {
  for (const url of [
    heraldUrl(gw.url, id, ["s"]),
    gw.url(`/ws?key=${TEST_APP.key}&token=${await heraldJwt({ sub: id, streams: [] })}`),
    gw.url(
      `/ws?key=${TEST_APP.key}&token=${await heraldJwt({ sub: "ok", streams: [], watchlist: [id] })}`,
    ),
  ]) {
    const c = await TestClient.connect(url);
    expect((await c.next<Frame>((f) => f.type === "auth_error")).payload.code).toBe("auth_failed");
    expect((await c.waitClosed()).code).toBe(4001);
  }
});

it.each([LONG, CONTROL])("broadcaster refuses sub %#", async (id) => {
  const c = await TestClient.connect(gw.url(`/broadcaster/${TEST_APP.key}`));
  const r = await call(c, "auth", { token: await broadcasterJwt({ sub: id }) });
  expect(r.error?.code).toBe("Unauthenticated");
  c.close();
});

it.each([LONG, CONTROL])("foony refuses clientId %#", async (id) => {
  const c = await TestClient.connect(gw.url("/realtime"));
  c.send({ t: "auth", token: await foonyJwt({ clientId: id }) });
  expect((await c.next<FoonyFrame>((f) => f.t === "err")).code).toBe(40101);
  await c.waitClosed();
});

it.each([LONG, CONTROL])("chat refuses sub %# and contacts", async (id) => {
  for (const token of [await chatToken(id), await chatToken("ok", { contacts: [id] })]) {
    const c = await TestClient.connect(gw.url(`/chat/${TEST_APP.key}?token=${token}`));
    expect((await c.waitClosed()).code).toBe(4001);
  }
});

it.each([LONG, CONTROL])(
  "pusher refuses user id %# in signin and in presence channel_data",
  async (id) => {
    const server = pusherServer(gw);
    const { c, socketId } = await rawPusher(gw);
    const channel = "presence-ids";
    const channelData = JSON.stringify({ user_id: id });
    const { auth } = server.authorizeChannel(socketId, channel, { user_id: id });
    c.send({ event: "pusher:subscribe", data: { channel, auth, channel_data: channelData } });
    const err = await c.next<PusherFrame>(isEvent("pusher:subscription_error", channel));
    expect(err).toBeDefined();
    const user = server.authenticateUser(socketId, { id });
    c.send({ event: "pusher:signin", data: user });
    expect((await c.waitClosed()).code).toBe(4009);
  },
);
