/**
 * One real nats-server, one presence replica, several gateways (each its
 * own NATS connection and `NatsPresenceClient`). Signals are observed on raw
 * NATS, exactly as the JetStream engine fans them out.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelSubscription } from "../../../shared/src/presence/api.js";
import { type NatsHandle, startNats } from "../../../shared/test/nats-harness.js";
import { waitFor } from "../../../shared/test/wait.js";
import {
  type Gateway,
  type Recorder,
  type Replica,
  recordSignals,
  startGateway,
  startReplica,
} from "./helpers.js";

let nats: NatsHandle;
let replica: Replica;
let rec: Recorder;
let url: string;

beforeAll(async () => {
  nats = await startNats();
  url = nats.urls[0] ?? "";
  rec = await recordSignals(url);
  replica = await startReplica(url);
  await waitFor(() => replica.service.owned().length === 16, { what: "all partitions owned" });
});

afterAll(async () => {
  await replica?.stop();
  await rec?.close();
  await nats?.stop();
});

function sub(
  app: string,
  channel: string,
  connectionId: string,
  userId?: string,
): ChannelSubscription {
  return {
    appId: app,
    channel,
    connectionId,
    userId,
    info: { name: userId ?? "" },
    member: true,
    maxMembers: 3,
  };
}

describe("presence service over NATS", () => {
  // The core promise of presence: users on different gateways see each other come and go.
  it("two users on different gateways see each other join and leave", async () => {
    await using g1 = await startGateway(url);
    await using g2 = await startGateway(url);
    const first = await g1.client.subscribe(sub("a1", "presence-room", "c1", "alice"));
    expect(first).toMatchObject({ ok: true, subscriberCount: 1, members: [{ userId: "alice" }] });
    const second = await g2.client.subscribe(sub("a1", "presence-room", "c2", "bob"));
    expect(second.ok && second.members.map((m) => m.userId).sort()).toEqual(["alice", "bob"]);
    await waitFor(() => rec.members("presence-room").length === 2, { what: "two joins" });
    expect(rec.members("presence-room")).toEqual([
      { action: "joined", userId: "alice", connectionId: "c1" },
      { action: "joined", userId: "bob", connectionId: "c2" },
    ]);
    await g2.client.connectionClosed("a1", "c2");
    await waitFor(() => rec.members("presence-room").length === 3, { what: "bob's leave" });
    expect(rec.members("presence-room")[2]).toMatchObject({ action: "left", userId: "bob" });
    expect((await g1.client.members("a1", "presence-room")).map((m) => m.userId)).toEqual([
      "alice",
    ]);
    await g1.client.unsubscribe("a1", "presence-room", "c1");
    expect(await g1.client.channels("a1")).toEqual([]);
  });

  // The member limit counts users, not connections, across all gateways.
  it("refuses a new user on a full channel", async () => {
    await using g1 = await startGateway(url);
    await using g2 = await startGateway(url);
    for (const u of ["u1", "u2", "u3"])
      await g1.client.subscribe(sub("a2", "presence-full", `c-${u}`, u));
    expect(await g2.client.subscribe(sub("a2", "presence-full", "c-u4", "u4"))).toEqual({
      ok: false,
      reason: "full",
    });
    expect((await g2.client.subscribe(sub("a2", "presence-full", "c-u1b", "u1"))).ok).toBe(true);
    expect(await g2.client.subscriberCount("a2", "presence-full")).toBe(4);
  });

  // User level across gateways: a second connection elsewhere keeps the user in.
  it("a user with connections on two gateways leaves only when both close", async () => {
    await using g1 = await startGateway(url);
    await using g2 = await startGateway(url);
    await g1.client.subscribe(sub("a3", "presence-two", "x1", "carol"));
    await g2.client.subscribe(sub("a3", "presence-two", "x2", "carol"));
    await g1.client.connectionClosed("a3", "x1");
    expect((await g2.client.members("a3", "presence-two")).map((m) => m.userId)).toEqual(["carol"]);
    await g2.client.connectionClosed("a3", "x2");
    await waitFor(() => rec.members("presence-two").length === 2, { what: "carol's leave" });
    expect(rec.members("presence-two").map((m) => m.action)).toEqual(["joined", "left"]);
  });

  // A gateway that dies says nothing; its users must still leave, and promptly.
  it("removes a crashed gateway's members with leave events", async () => {
    await using g1 = await startGateway(url);
    const g2: Gateway = await startGateway(url);
    await g1.client.subscribe(sub("a4", "presence-crash", "k1", "dave"));
    await g2.client.subscribe(sub("a4", "presence-crash", "k2", "erin"));
    await g2.client.subscribe(sub("a4", "presence-crash", "k3", "dave"));
    const crashedAt = Date.now();
    await g2.crash();
    await waitFor(() => rec.members("presence-crash").some((m) => m.action === "left"), {
      timeoutMs: 15_000,
      what: "erin's leave",
    });
    expect(Date.now() - crashedAt).toBeLessThan(15_000);
    expect(rec.members("presence-crash").filter((m) => m.action === "left")).toEqual([
      { action: "left", userId: "erin" },
    ]);
    expect((await g1.client.members("a4", "presence-crash")).map((m) => m.userId)).toEqual([
      "dave",
    ]);
    expect(await g1.client.subscriberCount("a4", "presence-crash")).toBe(1);
  });

  // Manual status, hiding, and watchlists reach the right users through their own subjects.
  it("status and watchlists", async () => {
    await using g1 = await startGateway(url);
    await using g2 = await startGateway(url);
    await g1.client.connectionOpened("a5", "w1", "watcher", ["frank"]);
    await g2.client.connectionOpened("a5", "f1", "frank", []);
    await g2.client.subscribe(sub("a5", "presence-st", "f1", "frank"));
    expect(await g1.client.status("a5", "frank")).toBe("online");
    await g2.client.setStatus("a5", "frank", "offline");
    expect(await g1.client.status("a5", "frank")).toBe("offline");
    await waitFor(() => rec.toUser("watcher").length === 4, { what: "watcher signals" });
    expect(rec.toUser("watcher")).toEqual([
      { kind: "watch", userId: "frank", online: true },
      { kind: "status", userId: "frank", status: "online" },
      { kind: "watch", userId: "frank", online: false },
      { kind: "status", userId: "frank", status: "offline" },
    ]);
    const onChannel = rec.all.filter(
      (r) => r.channel === "presence-st" && r.signal.kind === "status",
    );
    expect(onChannel.map((r) => r.signal)).toEqual([
      { kind: "status", userId: "frank", status: "offline" },
    ]);
  });

  // Under concurrent churn on three gateways the derived state must be exact,
  // and every announcement must be a real transition (no doubles, nothing missed).
  it("counts, members and watchlists are exact after a connect/disconnect storm", async () => {
    const gws = [await startGateway(url), await startGateway(url), await startGateway(url)];
    try {
      const app = "storm";
      const channels = ["presence-s0", "presence-s1", "news-s2"];
      const users = Array.from({ length: 30 }, (_, i) => `s${i}`);
      let seed = 42;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const watcherGw = gws[0] as Gateway;
      await watcherGw.client.connectionOpened(app, "watch-conn", "watcher", users);
      type Conn = { id: string; user: string; gw: Gateway; chans: string[]; open: boolean };
      const conns: Conn[] = [];
      for (let i = 0; i < 120; i++) {
        const user = users[rand(users.length)] as string;
        const chans = channels.filter(() => rand(2) === 0);
        conns.push({ id: `sc${i}`, user, gw: gws[rand(3)] as Gateway, chans, open: true });
      }
      await Promise.all(
        conns.map(async (c) => {
          await c.gw.client.connectionOpened(app, c.id, c.user, []);
          for (const ch of c.chans) {
            const r = await c.gw.client.subscribe({
              appId: app,
              channel: ch,
              connectionId: c.id,
              userId: c.user,
              member: ch.startsWith("presence-"),
              maxMembers: 1000,
            });
            expect(r.ok).toBe(true);
          }
        }),
      );
      await Promise.all(
        conns.map(async (c) => {
          const roll = rand(3);
          if (roll === 0) {
            c.open = false;
            await c.gw.client.connectionClosed(app, c.id);
          } else if (roll === 1 && c.chans.length > 0) {
            const ch = c.chans.pop() as string;
            await c.gw.client.unsubscribe(app, ch, c.id);
          }
        }),
      );
      const live = conns.filter((c) => c.open);
      for (const ch of channels) {
        const expectedCount = live.filter((c) => c.chans.includes(ch)).length;
        expect(await watcherGw.client.subscriberCount(app, ch)).toBe(expectedCount);
        const expectedMembers = ch.startsWith("presence-")
          ? [...new Set(live.filter((c) => c.chans.includes(ch)).map((c) => c.user))].sort()
          : [];
        const members = (await watcherGw.client.members(app, ch)).map((m) => m.userId).sort();
        expect(members).toEqual(expectedMembers);
        // The throttled count signal settles on the true count.
        const lastCount = () =>
          rec.all
            .filter(
              (r) => r.app === app && r.channel === ch && r.signal.kind === "subscriber_count",
            )
            .at(-1)?.signal;
        await waitFor(
          () =>
            JSON.stringify(lastCount()) ===
            JSON.stringify({ kind: "subscriber_count", count: expectedCount }),
          {
            timeoutMs: 5000,
            what: `count signal of ${ch}`,
          },
        );
        // Joins and leaves of each user alternate, ending in the user's real state.
        for (const u of users) {
          const seq = rec.all
            .filter(
              (r) =>
                r.app === app &&
                r.channel === ch &&
                r.signal.kind === "member" &&
                r.signal.userId === u,
            )
            .map((r) => (r.signal.kind === "member" ? r.signal.action : ""));
          for (const [i, a] of seq.entries()) expect(a).toBe(i % 2 === 0 ? "joined" : "left");
          expect(seq.length % 2 === 1).toBe(expectedMembers.includes(u));
        }
      }
      const online = new Set(live.map((c) => c.user));
      await waitFor(
        () =>
          users.every((u) => {
            const last = rec
              .toUser("watcher")
              .filter((s) => s.kind === "watch" && s.userId === u)
              .at(-1);
            return (last?.kind === "watch" && last.online) === online.has(u);
          }),
        { what: "watch signals settle" },
      );
      for (const u of users) {
        const seq = rec
          .toUser("watcher")
          .flatMap((s) => (s.kind === "watch" && s.userId === u ? [s.online] : []));
        for (const [i, on] of seq.entries()) expect(on).toBe(i % 2 === 0);
        expect(await watcherGw.client.status(app, u)).toBe(online.has(u) ? "online" : "offline");
      }
    } finally {
      for (const g of gws) await g.stop();
    }
  });
});
