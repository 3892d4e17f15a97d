import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../shared/test/wait.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import {
  connected,
  isEvent,
  nextEvent,
  type Pusher,
  type PusherFrame,
  pusherClient,
  rawPusher,
  subscribe,
} from "./pusher-client.js";
import { startWebhookReceiver, type WebhookEventBody } from "./webhook-receiver.js";

let gw: TestGateway;
let hooks: Awaited<ReturnType<typeof startWebhookReceiver>>;
const clients: Pusher[] = [];
const client = (o: Parameters<typeof pusherClient>[1] = {}) => {
  const p = pusherClient(gw, o);
  clients.push(p);
  return p;
};

beforeAll(async () => {
  // /flaky answers 500 twice before it takes anything.
  hooks = await startWebhookReceiver((path, n) => (path === "/flaky" && n <= 2 ? 500 : 200));
  const webhooks = [
    { url: hooks.url("/all") },
    { url: hooks.url("/occupancy"), event_types: ["channel_occupied", "channel_vacated"] },
    { url: hooks.url("/flaky"), event_types: ["cache_miss"] },
  ];
  gw = await startTestGateway({
    env: { TIDINGS_APPS: JSON.stringify([{ ...TEST_APP, webhooks }]) },
  });
});
afterAll(async () => {
  await gw?.stop();
  await hooks?.close();
});
afterEach(() => {
  for (const p of clients.splice(0)) p.disconnect();
});

const about = (channel: string) => (e: WebhookEventBody) => e.channel === channel;

describe("pusher webhooks (one process)", () => {
  it("sends occupied, member, client_event and vacated webhooks, signed", async () => {
    const alice = client({ member: { user_id: "wh-alice" } });
    const bob = client({ member: { user_id: "wh-bob" } });
    const ca = (await subscribe(alice, "presence-wh")).channel;
    const joined = nextEvent(ca, "pusher:member_added");
    const cb = (await subscribe(bob, "presence-wh")).channel;
    await joined;
    const typing = nextEvent(cb, "client-typing");
    ca.trigger("client-typing", { on: true });
    await typing;
    const aliceId = alice.connection.socket_id;
    bob.disconnect();
    alice.disconnect();
    const all = () => hooks.events("/all").filter(about("presence-wh"));
    await waitFor(() => all().some((e) => e.name === "channel_vacated"), { what: "vacated" });
    expect(all()).toEqual([
      { name: "channel_occupied", channel: "presence-wh" },
      { name: "member_added", channel: "presence-wh", user_id: "wh-alice" },
      { name: "member_added", channel: "presence-wh", user_id: "wh-bob" },
      {
        name: "client_event",
        channel: "presence-wh",
        event: "client-typing",
        data: '{"on":true}',
        socket_id: aliceId,
        user_id: "wh-alice",
      },
      // Two sockets closing: either order.
      expect.objectContaining({ name: "member_removed" }),
      expect.objectContaining({ name: "member_removed" }),
      { name: "channel_vacated", channel: "presence-wh" },
    ]);
    const removed = all().filter((e) => e.name === "member_removed");
    expect(removed.map((e) => e.user_id).sort()).toEqual(["wh-alice", "wh-bob"]);
    const posts = hooks.received.filter((r) => r.path === "/all");
    expect(posts.every((r) => r.valid && r.headers["x-pusher-key"] === TEST_APP.key)).toBe(true);
    expect(posts.every((r) => Math.abs(Date.now() - r.timeMs) < 60_000)).toBe(true);
  });

  it("sends client_event without user_id on private channels", async () => {
    const a = client();
    const b = client();
    const ca = (await subscribe(a, "private-wh")).channel;
    const cb = (await subscribe(b, "private-wh")).channel;
    const got = nextEvent(cb, "client-note");
    ca.trigger("client-note", "plain text");
    await got;
    const events = () => hooks.events("/all").filter((e) => e.name === "client_event");
    await waitFor(() => events().some(about("private-wh")), { what: "client_event" });
    expect(events().find(about("private-wh"))).toEqual({
      name: "client_event",
      channel: "private-wh",
      event: "client-note",
      data: "plain text",
      socket_id: a.connection.socket_id,
    });
  });

  it("retries a receiver that answers 500 until it takes the batch", async () => {
    const { c } = await rawPusher(gw);
    c.send({ event: "pusher:subscribe", data: { channel: "cache-wh-empty" } });
    await c.next<PusherFrame>(isEvent("pusher:cache_miss", "cache-wh-empty"));
    await waitFor(() => hooks.events("/flaky").length > 0, { what: "flaky delivery" });
    const posts = hooks.received.filter((r) => r.path === "/flaky");
    expect(posts.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(posts.map((r) => r.rawBody)).size).toBe(1);
    expect(hooks.events("/flaky")).toEqual([{ name: "cache_miss", channel: "cache-wh-empty" }]);
    expect(hooks.events("/all")).toContainEqual({ name: "cache_miss", channel: "cache-wh-empty" });
    c.close();
  });

  it("batches many events into few POSTs and honours event_types", async () => {
    const { c } = await rawPusher(gw);
    const names = Array.from({ length: 30 }, (_, i) => `wh-many-${i}`);
    for (const channel of names) c.send({ event: "pusher:subscribe", data: { channel } });
    for (const channel of names)
      await c.next(isEvent("pusher_internal:subscription_succeeded", channel));
    const occupied = () =>
      hooks.received.filter(
        (r) => r.path === "/occupancy" && r.events.some((e) => e.channel.startsWith("wh-many-")),
      );
    const many = (e: WebhookEventBody) => e.channel.startsWith("wh-many-");
    await waitFor(() => occupied().flatMap((r) => r.events.filter(many)).length === 30, {
      what: "30 occupied",
    });
    // 30 events inside one 250 ms window: one POST, two if the window closed mid-way.
    expect(occupied().length).toBeLessThanOrEqual(2);
    c.close();
    await waitFor(
      () => hooks.events("/occupancy").filter((e) => e.name === "channel_vacated").length >= 30,
      { what: "30 vacated" },
    );
    // The filtered receiver never saw anything but occupancy.
    const kinds = new Set(hooks.events("/occupancy").map((e) => e.name));
    expect([...kinds].sort()).toEqual(["channel_occupied", "channel_vacated"]);
    await connected(client());
  });
});
