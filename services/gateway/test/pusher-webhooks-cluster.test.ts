import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { at } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import { TEST_APP } from "./harness.js";
import {
  FAST_PRESENCE,
  spawnTidings,
  startTwoGateways,
  type TidingsProcess,
  type TwoGateways,
} from "./processes.js";
import {
  isEvent,
  nextEvent,
  type Pusher,
  type PusherFrame,
  pusherClient,
  rawPusher,
  subscribe,
  type Target,
} from "./pusher-client.js";
import {
  type ReceivedWebhook,
  startWebhookReceiver,
  type WebhookEventBody,
} from "./webhook-receiver.js";

describe("pusher webhooks across two gateways on one NATS", () => {
  let cluster: TwoGateways;
  let hooks: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let env: Record<string, string>;
  let downUp = false;
  let replacement: TidingsProcess | undefined;
  const clients: Pusher[] = [];
  const client = (g: Target, o: Parameters<typeof pusherClient>[1] = {}) => {
    const p = pusherClient(g, o);
    clients.push(p);
    return p;
  };

  beforeAll(async () => {
    // /flaky answers 500 twice: the replica that pulled the batch naks it and it comes back.
    // /down refuses everything until the test brings it up.
    hooks = await startWebhookReceiver((path, n) => {
      if (path === "/flaky") return n <= 2 ? 500 : 200;
      if (path === "/down") return downUp ? 200 : 503;
      return 200;
    });
    const webhooks = [
      { url: hooks.url("/all") },
      { url: hooks.url("/flaky"), event_types: ["cache_miss"] },
      { url: hooks.url("/down"), event_types: ["client_event"] },
    ];
    env = { TIDINGS_APPS: JSON.stringify([{ ...TEST_APP, webhooks }]) };
    cluster = await startTwoGateways(env);
  });
  afterEach(() => {
    for (const p of clients.splice(0)) p.disconnect();
  });
  afterAll(async () => {
    await replacement?.kill();
    await cluster?.stop();
    await hooks?.close();
  });

  const on = (channel: string, name?: string) => () =>
    hooks
      .events("/all")
      .filter((e: WebhookEventBody) => e.channel === channel && (!name || e.name === name));

  // Occupancy and membership are cluster-wide facts: each must reach the
  // receiver once, not once per gateway that saw a subscriber.
  it("fires occupied/vacated and member webhooks once for subscribers on two gateways", async () => {
    const alice = client(cluster.g1, { member: { user_id: "cw-alice" } });
    const bob = client(cluster.g2, { member: { user_id: "cw-bob" } });
    const ca = (await subscribe(alice, "presence-cw")).channel;
    const joined = nextEvent(ca, "pusher:member_added");
    const cb = (await subscribe(bob, "presence-cw")).channel;
    await joined;
    // A client event is decided by the gateway holding the sender, and goes the same way.
    const typing = nextEvent(cb, "client-typing");
    ca.trigger("client-typing", { on: 1 });
    await typing;
    alice.disconnect();
    bob.disconnect();
    await waitFor(() => on("presence-cw", "channel_vacated")().length > 0, {
      what: "vacated",
    });
    // Anything decided later by the same presence owner arrives after any duplicate would have.
    const marker = client(cluster.g2);
    await subscribe(marker, "cw-marker");
    await waitFor(() => on("cw-marker", "channel_occupied")().length > 0, { what: "marker" });
    const names = on("presence-cw")().map((e) => e.name);
    expect(names.filter((n) => n === "channel_occupied")).toHaveLength(1);
    expect(names.filter((n) => n === "channel_vacated")).toHaveLength(1);
    expect(names.filter((n) => n === "member_added")).toHaveLength(2);
    expect(names.filter((n) => n === "member_removed")).toHaveLength(2);
    expect(on("presence-cw", "client_event")()).toEqual([
      {
        name: "client_event",
        channel: "presence-cw",
        event: "client-typing",
        data: '{"on":1}',
        socket_id: expect.any(String),
        user_id: "cw-alice",
      },
    ]);
    expect(hooks.received.every((r) => r.valid)).toBe(true);
  });

  it("redelivers a batch from the JetStream queue until the receiver answers 2xx", async () => {
    const { c } = await rawPusher(cluster.g1);
    c.send({ event: "pusher:subscribe", data: { channel: "cache-cw-empty" } });
    await c.next<PusherFrame>(isEvent("pusher:cache_miss", "cache-cw-empty"));
    c.close();
    await waitFor(() => hooks.events("/flaky").length > 0, { what: "flaky delivery" });
    const posts = hooks.received.filter((r) => r.path === "/flaky");
    expect(posts.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(hooks.events("/flaky")).toEqual([{ name: "cache_miss", channel: "cache-cw-empty" }]);
  });

  // Stored batches outlive the replica that was trying to deliver them.
  it("delivers a queued batch through another presence replica after the first one dies", async () => {
    // /down also holds the earlier tests' client events, still being retried:
    // only this test's channel counts here.
    const mine = (r: ReceivedWebhook) =>
      r.path === "/down" && r.events.some((e) => e.channel === "private-cw-durable");
    const a = client(cluster.g1);
    const b = client(cluster.g2);
    const ca = (await subscribe(a, "private-cw-durable")).channel;
    const cb = (await subscribe(b, "private-cw-durable")).channel;
    const got = nextEvent(cb, "client-x");
    ca.trigger("client-x", { n: 1 });
    await got;
    await waitFor(() => hooks.received.some(mine), { what: "first attempt" });
    await cluster.presence.kill("SIGKILL");
    downUp = true;
    replacement = await spawnTidings("presence", {
      NATS_URL: cluster.nats.url(0),
      ...FAST_PRESENCE,
      ...env,
    });
    const delivered = () => hooks.received.filter((r) => mine(r) && r.status < 300);
    await waitFor(() => delivered().length > 0, {
      what: "delivery by the new replica",
      timeoutMs: 40_000,
    });
    // At-least-once (dialect README): a POST the killed replica had already
    // sent may be answered 2xx after the kill and its batch redelivered, but
    // it is always the same batch, never the event in a second one.
    const batches = new Set(delivered().map((r) => r.rawBody));
    expect(batches.size).toBe(1);
    expect(at(delivered(), 0).events.filter((e) => e.channel === "private-cw-durable")).toEqual([
      expect.objectContaining({ name: "client_event", channel: "private-cw-durable" }),
    ]);
  });
});
