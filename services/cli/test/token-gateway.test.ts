import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../../gateway/test/broadcaster-client.js";
import { ChatClient } from "../../gateway/test/chat-client.js";
import { type FoonyFrame, req } from "../../gateway/test/foony-client.js";
import { startTestGateway, TEST_APP, type TestGateway } from "../../gateway/test/harness.js";
import { type Frame, heraldConnect, request } from "../../gateway/test/herald-client.js";
import { type PusherFrame, rawPusher } from "../../gateway/test/pusher-client.js";
import { TestClient } from "../../gateway/test/ws-client.js";
import { runCli } from "./run-cli.js";

/** Mints with the CLI as a developer would, for the gateway's app. */
async function mint(...args: string[]): Promise<string> {
  const r = await runCli(["token", ...args], { TIDINGS_APPS: JSON.stringify([TEST_APP]) });
  if (r.code !== 0) throw new Error(`tidings token ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe("tokens from tidings token are accepted by a real gateway", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(() => gw.stop());

  it("herald: compact and JWT", async () => {
    const [compact, jwt] = await Promise.all([
      mint("herald", "--user", "cli-h1", "--channels", "cli-room-1,cli-room-2"),
      mint("herald", "--jwt", "--user", "cli-h2", "--channels", "cli-room-*"),
    ]);
    const q = new URLSearchParams({
      key: TEST_APP.key,
      user_id: "cli-h1",
      streams: "cli-room-1,cli-room-2",
      token: compact,
    });
    const a = await heraldConnect(gw.url(`/ws?${q}`));
    expect((await request(a, "subscribe", { stream_id: "cli-room-2" })).type).toBe("subscribed");
    const b = await heraldConnect(gw.url(`/ws?key=${TEST_APP.key}&token=${jwt}`));
    const sub = await request(b, "subscribe", { stream_id: "cli-room-9" });
    expect(sub.type).toBe("subscribed");
    // The grant is what was minted, not more.
    expect((await request(a, "subscribe", { stream_id: "cli-room-3" })).payload).toMatchObject({
      code: "forbidden",
    } satisfies Partial<Frame["payload"]>);
    a.close();
    b.close();
  });

  it("broadcaster: a JWT with the channels and scope asked for", async () => {
    const token = await mint(
      "broadcaster",
      "--user",
      "cli-b1",
      "--channels",
      "cli-news",
      "--scope",
      "subscribe",
    );
    const c = await TestClient.connect(gw.url(`/broadcaster/${TEST_APP.key}`));
    expect((await call(c, "auth", { token })).result).toBeDefined();
    expect((await call(c, "subscribe", { channel: "cli-news" })).result).toBeDefined();
    expect(
      (await call(c, "publish", { channel: "cli-news", event: "e", payload: 1 })).error,
    ).toBeDefined();
    c.close();
  });

  it("chat: a JWT for the user", async () => {
    const token = await mint(
      "chat",
      "--user",
      "cli-c1",
      "--contacts",
      "cli-c2",
      "--expires",
      "10m",
    );
    const c = await ChatClient.connect(gw.url, "cli-c1", { token });
    const r = await c.request("new", { chatId: "cli-c2", message: "hi", clientMessageId: "m1" });
    expect(r.error).toBeUndefined();
    c.ws.close();
  });

  it("foony: a JWT naming the app by kid, with the capability asked for", async () => {
    const token = await mint(
      "foony",
      "--user",
      "cli-f1",
      "--channels",
      "cli-f-*",
      "--ops",
      "subscribe",
    );
    const c = await TestClient.connect(gw.url("/realtime"));
    c.send({ t: "auth", token });
    const connected = await c.next<FoonyFrame>((f) => f.t === "connected" || f.t === "err");
    expect(connected.t).toBe("connected");
    expect((await req(c, { t: "sub", channel: "cli-f-room" })).t).toBe("ack");
    expect((await req(c, { t: "pub", channel: "cli-f-room", name: "n", data: 1 })).t).toBe("err");
    c.close();
  });

  it("pusher: private and presence channel signatures for a socket id", async () => {
    const { c, socketId } = await rawPusher(gw);
    const priv = JSON.parse(
      await mint("pusher", "--socket-id", socketId, "--channel", "private-cli-p"),
    ) as { auth: string };
    c.send({ event: "pusher:subscribe", data: { channel: "private-cli-p", auth: priv.auth } });
    await c.next<PusherFrame>(
      (f) => f.event === "pusher_internal:subscription_succeeded" && f.channel === "private-cli-p",
    );
    const pres = JSON.parse(
      await mint(
        "pusher",
        "--socket-id",
        socketId,
        "--channel",
        "presence-cli-p",
        "--user",
        "cli-p1",
      ),
    ) as { auth: string; channel_data: string };
    c.send({ event: "pusher:subscribe", data: { channel: "presence-cli-p", ...pres } });
    await c.next<PusherFrame>(
      (f) => f.event === "pusher_internal:subscription_succeeded" && f.channel === "presence-cli-p",
    );
    const signin = JSON.parse(
      await mint("pusher", "--socket-id", socketId, "--signin", "--user", "cli-p1"),
    ) as { auth: string; user_data: string };
    c.send({ event: "pusher:signin", data: signin });
    await c.next<PusherFrame>((f) => f.event === "pusher:signin_success");
    c.close();
  });
});
