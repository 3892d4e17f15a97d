import { describe, expect, it } from "vitest";
import { JetStreamEngine } from "../../../shared/src/engine/jetstream.js";
import { startNats } from "../../../shared/test/nats-harness.js";
import { broadcasterConnect, broadcasterJwt, call } from "./broadcaster-client.js";
import { ChatClient } from "./chat-client.js";
import { foonyConnect, foonyJwt, req } from "./foony-client.js";
import { startTestGateway } from "./harness.js";
import { heraldConnect, heraldUrl, request } from "./herald-client.js";
import { type PusherFrame, rawPusher } from "./pusher-client.js";
import type { TestClient } from "./ws-client.js";

describe("subscribers a gateway cannot serve live events to", () => {
  // With NATS gone longer than the live bound the gateway cannot know what it
  // missed: each dialect's clients must be closed with its reconnect code
  // (then they replay), never left open and silent.
  it("are closed with each dialect's reconnect code", async () => {
    await using nats = await startNats();
    const engine = await JetStreamEngine.connect({
      servers: nats.urls,
      name: "gap-codes",
      live: { checkMs: 200, gapMs: 1000 },
    });
    try {
      await using gw = await startTestGateway({ engine });
      const channel = "gap-codes";
      const herald = await heraldConnect(heraldUrl(gw.url, "h", [channel]));
      expect((await request(herald, "subscribe", { stream_id: channel })).type).toBe("subscribed");
      const { c: pusher } = await rawPusher(gw);
      pusher.send({ event: "pusher:subscribe", data: { channel } });
      await pusher.next<PusherFrame>((f) => f.event === "pusher_internal:subscription_succeeded");
      const broadcaster = await broadcasterConnect(gw.url, broadcasterJwt());
      expect((await call(broadcaster, "subscribe", { channel })).result).toBeDefined();
      const foony = await foonyConnect(gw.url, foonyJwt());
      expect((await req(foony, { t: "sub", channel })).t).toBe("ack");
      const chat = await ChatClient.connect(gw.url, "chat-user");

      await nats.kill(0);
      const expected: [string, TestClient, number][] = [
        ["herald", herald, 1012],
        ["pusher", pusher, 4200],
        ["broadcaster", broadcaster, 1012],
        ["foony", foony, 1012],
        ["chat", chat.ws, 1012],
      ];
      const codes = await Promise.all(
        expected.map(async ([name, c]) => [name, (await c.waitClosed(15_000)).code]),
      );
      expect(Object.fromEntries(codes)).toEqual(
        Object.fromEntries(expected.map(([name, , code]) => [name, code])),
      );
      const closes = await gw.gateway.metrics.liveGapCloses.get();
      expect(closes.values.reduce((n, v) => n + v.value, 0)).toBe(expected.length);
    } finally {
      await engine.close();
    }
  });
});
