/**
 * Two presence replicas: the active one is a real child process (`tsx
 * services/presence/src/main.ts`) killed with SIGKILL; the standby runs in
 * this process. Gateways keep working through the takeover, and the members
 * seen by clients stay exactly right: no ghost, no repeated join, no leave
 * for someone who never left.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ChannelSubscription } from "../../../shared/src/presence/api.js";
import { startNats } from "../../../shared/test/nats-harness.js";
import { waitFor } from "../../../shared/test/wait.js";
import { recordSignals, spawnReplica, startGateway, startReplica } from "./helpers.js";

const APP = "fo";
const CH = "presence-fo";

function sub(connectionId: string, userId: string): ChannelSubscription {
  return { appId: APP, channel: CH, connectionId, userId, member: true, maxMembers: 100 };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("presence replica failover", () => {
  it("a standby takes over a killed replica without spurious joins or leaves", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const url = nats.urls[0] ?? "";
    const rec = await recordSignals(url);
    cleanups.push(() => rec.close());

    const child = await spawnReplica(url);
    cleanups.push(() => child.kill());
    await waitFor(() => child.owned.size === 16, {
      timeoutMs: 20_000,
      what: "child owns every partition",
    });
    const standby = await startReplica(url);
    cleanups.push(() => standby.stop());
    expect(standby.service.owned()).toEqual([]);

    const g1 = await startGateway(url);
    const g2 = await startGateway(url);
    cleanups.push(
      () => g1.stop(),
      () => g2.stop(),
    );
    await g1.client.subscribe(sub("c1", "alice"));
    await g2.client.subscribe(sub("c2", "bob"));
    await g1.client.subscribe(sub("c3", "carol"));
    await g2.client.subscribe(sub("c4", "carol"));
    await g1.client.connectionOpened(APP, "w1", "watcher", ["bob"]);
    await g2.client.connectionOpened(APP, "c2", "bob", []);
    await waitFor(() => rec.members(CH).length === 3 && rec.toUser("watcher").length === 2, {
      what: "initial joins and bob online",
    });
    const before = rec.all.length;

    const killedAt = Date.now();
    await child.kill();
    // Changes made while nobody owns the partition: each must be announced once.
    const closing = g2.client.connectionClosed(APP, "c4");
    const leaving = g2.client.connectionClosed(APP, "c2");
    const joining = g1.client.subscribe(sub("c5", "dave"));
    await waitFor(() => standby.service.owned().length === 16, {
      timeoutMs: 15_000,
      what: "takeover",
    });
    const outcome = await joining;
    await Promise.all([closing, leaving]);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    // Bob's leave comes from another gateway, so it may land before or after this join.
    expect(outcome.ok && outcome.members.map((m) => m.userId)).toEqual(
      expect.arrayContaining(["alice", "carol", "dave"]),
    );

    await waitFor(() => rec.members(CH).length === 5 && rec.toUser("watcher").length === 4, {
      what: "failover changes announced",
    });
    const after = rec.all.slice(before);
    const memberEvents = after.flatMap((r) =>
      r.signal.kind === "member" ? [`${r.signal.action}:${r.signal.userId}`] : [],
    );
    expect(memberEvents.sort()).toEqual(["joined:dave", "left:bob"]);
    expect(rec.toUser("watcher").slice(2)).toEqual([
      { kind: "watch", userId: "bob", online: false },
      { kind: "status", userId: "bob", status: "offline" },
    ]);
    expect((await g1.client.members(APP, CH)).map((m) => m.userId).sort()).toEqual([
      "alice",
      "carol",
      "dave",
    ]);
    expect(await g1.client.subscriberCount(APP, CH)).toBe(3);

    // The new owner also reaps gateways: one dying now is cleaned up as before.
    await g1.crash();
    await waitFor(() => rec.members(CH).length === 8, {
      timeoutMs: 15_000,
      what: "g1's users leave",
    });
    expect(await g2.client.members(APP, CH)).toEqual([]);
  });
});
