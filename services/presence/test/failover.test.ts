/**
 * Two presence replicas: the active one is a real child process (`tsx
 * services/presence/src/main.ts`) killed with SIGKILL; the standby runs in
 * this process. Gateways keep working through the takeover, and the members
 * seen by clients stay exactly right: no ghost, no repeated join, no leave
 * for someone who never left.
 */
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import type { ChannelSubscription, PresenceChange } from "../../../shared/src/presence/api.js";
import {
  connectionKeyFilter,
  PRESENCE_STATE_BUCKET,
  partitionOf,
  presenceResyncSubject,
} from "../../../shared/src/presence/subjects.js";
import { droppingConnection } from "../../../shared/test/lossy-live.js";
import { startNats } from "../../../shared/test/nats-harness.js";
import { waitFor } from "../../../shared/test/wait.js";
import { recordSignals, spawnReplica, startGateway, startReplica } from "./helpers.js";

const APP = "fo";
const CH = "presence-fo";

const ROOM = "fo-room";

function sub(connectionId: string, userId: string): ChannelSubscription {
  return { appId: APP, channel: CH, connectionId, userId, member: true, maxMembers: 100 };
}

function pres(
  action: PresenceChange["action"],
  connectionId: string,
  clientId: string,
  data?: number,
): PresenceChange {
  return { appId: APP, channel: ROOM, action, connectionId, clientId, data };
}

/** A subscription with nothing a takeover needs from KV: no user, no membership. */
function plainSub(appId: string, channel: string, connectionId: string): ChannelSubscription {
  return { appId, channel, connectionId, member: false, maxMembers: 100 };
}

const cleanups: (() => Promise<void>)[] = [];

/** An owner of every partition and a standby, both taking `app` for one without occupancy webhooks. */
async function ownerAndStandby(url: string, app: string) {
  const options = { occupancyWebhooks: (appId: string) => appId !== app };
  const first = await startReplica(url, options);
  cleanups.push(() => first.stop());
  await waitFor(() => first.service.owned().length === 16, { what: "first owns all" });
  const standby = await startReplica(url, options);
  cleanups.push(() => standby.stop());
  return { first, standby };
}
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
    // Connection-level presence entries on both gateways (Foony `pres`).
    await g1.client.setPresence(pres("enter", "p1", "ann", 1));
    await g2.client.setPresence(pres("enter", "p2", "bob"));
    await g1.client.setPresence(pres("enter", "p3", "cat"));
    const entries = () =>
      rec.all.flatMap((r) =>
        r.signal.kind === "entry"
          ? [`${r.signal.action}:${r.signal.clientId}:${r.signal.connectionId}`]
          : [],
      );
    await waitFor(
      () =>
        rec.members(CH).length === 3 &&
        rec.toUser("watcher").length === 2 &&
        entries().length === 3,
      { what: "initial joins, entries and bob online" },
    );
    const before = rec.all.length;

    const killedAt = Date.now();
    await child.kill();
    // Changes made while nobody owns the partition: each must be announced once.
    const closing = g2.client.connectionClosed(APP, "c4");
    const leaving = g2.client.connectionClosed(APP, "c2");
    const joining = g1.client.subscribe(sub("c5", "dave"));
    const entering = g1.client.setPresence(pres("enter", "p4", "dan"));
    const updating = g1.client.setPresence(pres("update", "p1", "ann", 2));
    const exiting = g2.client.connectionClosed(APP, "p2");
    await waitFor(() => standby.service.owned().length === 16, {
      timeoutMs: 15_000,
      what: "takeover",
    });
    const outcome = await joining;
    await Promise.all([closing, leaving, entering, updating, exiting]);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    // Bob's leave comes from another gateway, so it may land before or after this join.
    expect(outcome.ok && outcome.members.map((m) => m.userId)).toEqual(
      expect.arrayContaining(["alice", "carol", "dave"]),
    );

    await waitFor(
      () =>
        rec.members(CH).length === 5 &&
        rec.toUser("watcher").length === 4 &&
        entries().length === 6,
      { what: "failover changes announced" },
    );
    const after = rec.all.slice(before);
    const memberEvents = after.flatMap((r) =>
      r.signal.kind === "member" ? [`${r.signal.action}:${r.signal.userId}`] : [],
    );
    expect(memberEvents.sort()).toEqual(["joined:dave", "left:bob"]);
    // Entries too: each change once, and cat's untouched entry not re-announced.
    expect(entries().slice(3).sort()).toEqual(["enter:dan:p4", "leave:bob:p2", "update:ann:p1"]);
    expect(await g2.client.present(APP, ROOM)).toEqual(
      expect.arrayContaining([
        { clientId: "ann", connectionId: "p1", data: 2 },
        { clientId: "cat", connectionId: "p3" },
        { clientId: "dan", connectionId: "p4" },
      ]),
    );
    expect((await g2.client.present(APP, ROOM)).length).toBe(3);
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
    await waitFor(() => rec.members(CH).length === 8 && entries().length === 9, {
      timeoutMs: 15_000,
      what: "g1's users and entries leave",
    });
    expect(await g2.client.members(APP, CH)).toEqual([]);
    expect(entries().slice(6).sort()).toEqual(["leave:ann:p1", "leave:cat:p3", "leave:dan:p4"]);
    expect(await g2.client.present(APP, ROOM)).toEqual([]);
  });

  // Only a connection a takeover needs anything of is written to KV: a
  // plain subscription (no user, no membership) of an app whose webhooks do
  // not take occupancy comes back with the gateways' resync instead.
  it("writes no plain subscription to KV, and a takeover gets them back from the gateways", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const url = nats.urls[0] ?? "";
    const app = "plainapp";
    const { first, standby } = await ownerAndStandby(url, app);
    const gw = await startGateway(url);
    cleanups.push(() => gw.stop());
    const plain = (channel: string, connectionId: string) => plainSub(app, channel, connectionId);
    await gw.client.subscribe(plain("news", "n1"));
    await gw.client.subscribe(plain("news", "n2"));
    await gw.client.subscribe(plain("sport", "s1"));
    await gw.client.subscribe({ ...plain("presence-room", "m1"), userId: "ann", member: true });
    // A connection that was a member, then only plain: its record must go.
    await gw.client.subscribe({ ...plain("presence-room", "n2"), userId: "bob", member: true });
    await gw.client.unsubscribe(app, "presence-room", "n2");

    const nc = await connect({ servers: url });
    cleanups.push(() => nc.close());
    const kv = await new Kvm(nc).open(PRESENCE_STATE_BUCKET);
    const stored = async () => {
      const keys: string[] = [];
      for await (const k of await kv.keys(connectionKeyFilter(partitionOf(app)))) keys.push(k);
      return keys.filter((k) => k.includes(`.${app}.`));
    };
    expect((await stored()).map((k) => k.split(".").at(-1))).toEqual(["m1"]);

    await first.stop();
    await waitFor(() => standby.service.owned().length === 16, { what: "takeover" });
    await waitFor(async () => (await gw.client.subscriberCount(app, "news")) === 2, {
      what: "news counted again from the gateway's resync",
    });
    expect(await gw.client.subscriberCount(app, "sport")).toBe(1);
    expect((await gw.client.members(app, "presence-room")).map((m) => m.userId)).toEqual(["ann"]);
    await gw.client.unsubscribe(app, "news", "n1");
    expect(await gw.client.subscriberCount(app, "news")).toBe(1);
    expect((await stored()).map((k) => k.split(".").at(-1))).toEqual(["m1"]);
  });

  // Plain connections are not in KV, so what the old owner announced of a
  // count is not either: a count that fell while nobody owned the partition
  // (here: the gateway with two of three subscribers died with the owner) is
  // announced, and a gateway that missed the resync request is asked again.
  it("announces a count that fell during a takeover, and asks a gateway that missed the resync again", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const url = nats.urls[0] ?? "";
    const rec = await recordSignals(url);
    cleanups.push(() => rec.close());
    const app = "plaincount";
    const { first, standby } = await ownerAndStandby(url, app);
    const plain = (channel: string, connectionId: string) => plainSub(app, channel, connectionId);
    const g1 = await startGateway(url);
    const g2 = await startGateway(url);
    // Deaf to the takeover's resync request: it must be asked again.
    let deaf = false;
    const g3 = await startGateway(url, undefined, (nc) =>
      droppingConnection(nc, (subject) => {
        if (subject !== presenceResyncSubject() || !deaf) return false;
        deaf = false;
        return true;
      }),
    );
    cleanups.push(
      () => g1.stop(),
      () => g2.stop(),
      () => g3.stop(),
    );
    await g1.client.connectionOpened(app, "a", "ann", []);
    await g1.client.subscribe({ ...plain("news", "a"), userId: "ann" });
    await g2.client.subscribe(plain("news", "p1"));
    await g2.client.subscribe(plain("news", "p2"));
    await g3.client.subscribe(plain("sport", "s1"));
    const counts = (channel: string) =>
      rec.all.flatMap((r) =>
        r.app === app && r.channel === channel && r.signal.kind === "subscriber_count"
          ? [r.signal.count]
          : [],
      );
    await waitFor(() => counts("news").at(-1) === 3 && counts("sport").at(-1) === 1, {
      what: "counts announced",
    });

    deaf = true;
    await g2.crash();
    await first.stop();
    await waitFor(() => standby.service.owned().length === 16, { what: "takeover" });
    await waitFor(() => counts("news").at(-1) === 1, { what: "the fallen count announced" });
    expect(await g1.client.subscriberCount(app, "news")).toBe(1);
    await waitFor(async () => (await g3.client.subscriberCount(app, "sport")) === 1, {
      what: "the deaf gateway's subscription back",
    });
    expect(deaf).toBe(false);
  });
});
