import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../shared/test/wait.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { startTwoGateways, type TidingsProcess, type TwoGateways } from "./processes.js";
import {
  connected,
  isEvent,
  nextEvent,
  type Pusher,
  type PusherFrame,
  postJson,
  pusherClient,
  pusherServer,
  rawPusher,
  subscribe,
  type Target,
} from "./pusher-client.js";

describe("pusher across two gateways on one NATS", () => {
  let cluster: TwoGateways;
  let g1: TidingsProcess;
  let g2: TidingsProcess;
  const clients: Pusher[] = [];
  const client = (g: Target, o: Parameters<typeof pusherClient>[1] = {}) => {
    const p = pusherClient(g, o);
    clients.push(p);
    return p;
  };

  beforeAll(async () => {
    cluster = await startTwoGateways();
    ({ g1, g2 } = cluster);
  });
  afterEach(() => {
    for (const p of clients.splice(0)) p.disconnect();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("delivers HTTP events from one gateway to pusher-js on the other, honouring socket_id", async () => {
    const a = client(g2);
    const b = client(g2);
    const aId = await connected(a);
    const ca = (await subscribe(a, "c-news")).channel;
    const cb = (await subscribe(b, "c-news")).channel;
    const seenA: unknown[] = [];
    ca.bind("e", (d: unknown) => seenA.push(d));
    const gotB = nextEvent(cb, "e");
    await pusherServer(g1).trigger("c-news", "e", { n: 1 }, { socket_id: aId });
    expect((await gotB).data).toEqual({ n: 1 });
    const gotA = nextEvent(ca, "e");
    await pusherServer(g1).trigger("c-news", "e", { n: 2 });
    expect((await gotA).data).toEqual({ n: 2 });
    expect(seenA).toEqual([{ n: 2 }]);
  });

  it("shares presence members, counts and client events across gateways", async () => {
    const alice = client(g1, { member: { user_id: "c-alice", user_info: { n: "A" } } });
    const bob = client(g2, { member: { user_id: "c-bob", user_info: { n: "B" } } });
    const ca = (await subscribe(alice, "presence-c-room")).channel;
    const added = nextEvent(ca, "pusher:member_added");
    const joined = await subscribe(bob, "presence-c-room");
    expect((joined.data as { count: number }).count).toBe(2);
    expect((await added).data).toEqual({ id: "c-bob", info: { n: "B" } });

    const users = await (
      await pusherServer(g1).get({ path: "/channels/presence-c-room/users" })
    ).json();
    expect((users as { users: { id: string }[] }).users.map((u) => u.id).sort()).toEqual([
      "c-alice",
      "c-bob",
    ]);
    const info = await (
      await pusherServer(g2).get({
        path: "/channels/presence-c-room",
        params: { info: "user_count,subscription_count" },
      })
    ).json();
    expect(info).toEqual({ occupied: true, user_count: 2, subscription_count: 2 });

    const typing = nextEvent(joined.channel, "client-typing");
    ca.trigger("client-typing", { on: true });
    const ev = await typing;
    expect(ev.data).toEqual({ on: true });
    expect(ev.meta?.user_id).toBe("c-alice");

    const removed = nextEvent(ca, "pusher:member_removed");
    bob.disconnect();
    expect((await removed).data).toEqual({ id: "c-bob", info: { n: "B" } });
  });

  it("routes server-to-user events, watchlists and terminate_connections across gateways", async () => {
    const watcher = client(g1, { user: { id: "c-w", watchlist: ["c-friend"] } });
    watcher.signin();
    const online: string[] = [];
    watcher.user.watchlist.bind("online", (e: { user_ids: string[] }) =>
      online.push(...e.user_ids),
    );
    await waitFor(() => watcher.user.user_data !== null, { what: "signin" });
    const note = new Promise((resolve) => watcher.user.bind("note", resolve));
    await pusherServer(g2).sendToUser("c-w", "note", { hi: 1 });
    expect(await note).toEqual({ hi: 1 });

    const { c, socketId } = await rawPusher(g2);
    const { auth, user_data } = pusherServer(g2).authenticateUser(socketId, { id: "c-friend" });
    c.send({ event: "pusher:signin", data: { auth, user_data } });
    await c.next<PusherFrame>(isEvent("pusher:signin_success"));
    await waitFor(() => online.includes("c-friend"), { what: "friend online across gateways" });
    await pusherServer(g1).terminateUserConnections("c-friend");
    expect((await c.waitClosed()).code).toBe(4009);
  });

  it("serves cache channels and idempotent publishes across gateways; herald sees them", async () => {
    const h = await heraldConnect(heraldUrl(g2.url, "c-h", ["cache-c-px"]));
    await request(h, "subscribe", { stream_id: "cache-c-px" });
    const body = { name: "px", channels: ["cache-c-px"], data: '{"v":1}' };
    await postJson(pusherServer(g1), "/events", { ...body, idempotency_key: "c-k" });
    await postJson(pusherServer(g2), "/events", { ...body, idempotency_key: "c-k" });
    const p = client(g2);
    await connected(p);
    const ch = p.subscribe("cache-c-px");
    expect((await nextEvent(ch, "px")).data).toEqual({ v: 1 });
    const first = await h.next<Frame>(isType("event.new"));
    expect(first.payload.body).toEqual({ v: 1 });
    await pusherServer(g1).trigger("cache-c-px", "marker", {});
    await h.next<Frame>((f) => f.payload?.type === "marker");
    expect(h.all<Frame>((f) => f.payload?.type === "px")).toHaveLength(1);
    h.close();
  });
});
