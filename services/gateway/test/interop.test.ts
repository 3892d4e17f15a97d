import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { at } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import {
  broadcasterConnect,
  broadcasterJwt,
  call,
  isMessage,
  type Notification,
} from "./broadcaster-client.js";
import { appKeyAuth, type FoonyFrame, foonyConnect, isT, req } from "./foony-client.js";
import { startTestGateway, type TestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { startTwoGateways, type TwoGateways } from "./processes.js";
import { type PusherFrame, pusherServer, rawPusher } from "./pusher-client.js";
import type { TestClient } from "./ws-client.js";

type Base = { url: (path: string) => string; http: (path: string) => string; port: number };

/**
 * One client per dialect on one channel; each publishes and each must see
 * the others' events mapped as protocols/README.md "Interop" says. Run on
 * one gateway, and with every client spread over two gateways on NATS.
 */
function interopSuite(name: string, gateways: () => [Base, Base]) {
  describe(name, () => {
    it("delivers every dialect's events to every other dialect, correctly mapped", async () => {
      const [g1, g2] = gateways();
      const ch = `interop-${name.replace(/\W/g, "")}`;

      const herald = await heraldConnect(heraldUrl(g1.url, "hu", [ch]));
      await request(herald, "subscribe", { stream_id: ch }, 20_000);
      const { c: pusher } = await rawPusher(g2);
      pusher.send({ event: "pusher:subscribe", data: { channel: ch } });
      await pusher.next<PusherFrame>((f) => f.event === "pusher_internal:subscription_succeeded");
      const bc = await broadcasterConnect(g1.url, broadcasterJwt({ sub: "bu" }));
      expect((await call(bc, "subscribe", { channel: ch })).result).toBeDefined();
      const foony = await foonyConnect(g2.url, appKeyAuth("fu"));
      expect((await req(foony, { t: "sub", channel: ch })).t).toBe("ack");

      // 1. Herald publishes a JSON object.
      const ack = await request(herald, "event.publish", {
        stream_id: ch,
        type: "from-herald",
        body: { n: 1 },
      });
      // 2. Pusher's HTTP API publishes a JSON string and a non-JSON string.
      const server = pusherServer(g2);
      await server.trigger(ch, "from-pusher", JSON.stringify({ n: 2 }));
      await server.trigger(ch, "from-pusher-text", "plain text");
      // 3. Broadcaster publishes over its socket.
      const bpub = await call(bc, "publish", {
        channel: ch,
        event: "from-broadcaster",
        payload: { n: 3 },
      });
      expect(bpub.result?.id).toMatch(/^evt_/);
      // 4. Foony publishes.
      expect(
        (await req(foony, { t: "pub", channel: ch, name: "from-foony", data: { n: 4 } })).t,
      ).toBe("ack");

      const names = [
        "from-herald",
        "from-pusher",
        "from-pusher-text",
        "from-broadcaster",
        "from-foony",
      ];
      await waitFor(() => herald.all<Frame>(isType("event.new")).length >= 5, {
        what: "herald got 5",
      });
      await waitFor(() => pusher.all<PusherFrame>((f) => names.includes(f.event)).length >= 5, {
        what: "pusher got 5",
      });
      await waitFor(() => bc.all<Notification>(isMessage()).length >= 5, {
        what: "broadcaster got 5",
      });
      await waitFor(() => foony.all<FoonyFrame>(isT("msg")).length >= 5, { what: "foony got 5" });

      // Herald: type/body/user_id/event_id/seq, Pusher string data parsed when it is JSON text.
      const h = herald.all<Frame>(isType("event.new")).map((f) => f.payload);
      expect(h.map((p) => [p.type, p.body, p.user_id])).toEqual([
        ["from-herald", { n: 1 }, "hu"],
        ["from-pusher", { n: 2 }, undefined],
        ["from-pusher-text", "plain text", undefined],
        ["from-broadcaster", { n: 3 }, "bu"],
        ["from-foony", { n: 4 }, "fu"],
      ]);
      expect(h[0]?.event_id).toBe(ack.payload.event_id);
      const seqs = h.map((p) => p.seq as number);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);

      // Pusher: event/channel and data always a string (JSON text for JSON values).
      const p = pusher.all<PusherFrame>((f) => names.includes(f.event));
      expect(p.map((f) => [f.event, f.channel, f.data])).toEqual([
        ["from-herald", ch, JSON.stringify({ n: 1 })],
        ["from-pusher", ch, JSON.stringify({ n: 2 })],
        ["from-pusher-text", ch, "plain text"],
        ["from-broadcaster", ch, JSON.stringify({ n: 3 })],
        ["from-foony", ch, JSON.stringify({ n: 4 })],
      ]);

      // Broadcaster: event/payload, id = event_id, per-subscription seq 1..5, RFC 3339 times.
      const b = bc.all<Notification>(isMessage()).map((f) => f.params);
      expect(b.map((x) => [x.event, x.payload, x.seq])).toEqual([
        ["from-herald", { n: 1 }, 1],
        ["from-pusher", { n: 2 }, 2],
        ["from-pusher-text", "plain text", 3],
        ["from-broadcaster", { n: 3 }, 4],
        ["from-foony", { n: 4 }, 5],
      ]);
      expect(b[0]?.id).toBe(ack.payload.event_id);
      const created = at(b, 0).createTime;
      expect(new Date(created).toISOString()).toBe(created);

      // Foony: name/data/clientId, resumable messageIds.
      const f = foony.all<FoonyFrame>(isT("msg"));
      expect(f.map((x) => [x.name, x.data, x.clientId])).toEqual([
        ["from-herald", { n: 1 }, "hu"],
        ["from-pusher", { n: 2 }, undefined],
        ["from-pusher-text", "plain text", undefined],
        ["from-broadcaster", { n: 3 }, "bu"],
        ["from-foony", { n: 4 }, "fu"],
      ]);
      // A Foony client resuming from the second message gets the last three, in order.
      const resumed = await foonyConnect(g1.url, appKeyAuth("fu2"));
      await req(resumed, { t: "sub", channel: ch, lastMessageId: at(f, 1).messageId });
      await waitFor(() => resumed.all<FoonyFrame>(isT("msg")).length >= 3);
      expect(resumed.all<FoonyFrame>(isT("msg")).map((x) => x.name)).toEqual(names.slice(2));

      for (const c of [herald, pusher, bc, foony, resumed] as TestClient[]) c.close();
    });

    it("relays ephemeral events from Herald and Pusher client events between the two", async () => {
      const [g1, g2] = gateways();
      const ch = `private-eph-${name.replace(/\W/g, "")}`;
      const herald = await heraldConnect(heraldUrl(g1.url, "hu", [ch]));
      await request(herald, "subscribe", { stream_id: ch }, 20_000);
      const { c: pusher, socketId } = await rawPusher(g2);
      const auth = pusherServer(g2).authorizeChannel(socketId, ch).auth;
      pusher.send({ event: "pusher:subscribe", data: { channel: ch, auth } });
      await pusher.next<PusherFrame>((f) => f.event === "pusher_internal:subscription_succeeded");
      herald.send({
        type: "event.trigger",
        payload: { stream_id: ch, type: "client-wave", body: { hi: 1 } },
      });
      const got = await pusher.next<PusherFrame>((f) => f.event === "client-wave");
      expect(got.data).toBe(JSON.stringify({ hi: 1 }));
      pusher.send({ event: "client-nudge", channel: ch, data: { yo: 2 } });
      const h = await herald.next<Frame>(isType("event.new", (p) => p.type === "client-nudge"));
      expect(h.payload).toMatchObject({ stream_id: ch, body: { yo: 2 }, ephemeral: true });
      herald.close();
      pusher.close();
    });
  });
}

let single: TestGateway;
let cluster: TwoGateways;

beforeAll(async () => {
  single = await startTestGateway();
  cluster = await startTwoGateways();
});
afterAll(async () => {
  await single?.stop();
  await cluster?.stop();
});

interopSuite("one gateway", () => [single, single]);
interopSuite("two gateways on NATS", () => [cluster.g1, cluster.g2]);
