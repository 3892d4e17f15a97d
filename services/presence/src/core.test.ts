import { describe, expect, it } from "vitest";
import type { Signal } from "../../../shared/src/model.js";
import { type JoinRequest, PresenceCore, type PresenceEffect } from "./core.js";

const APP = "app";

function join(over: Partial<JoinRequest> & { connectionId: string }): JoinRequest {
  return { appId: APP, channel: "presence-room", member: true, maxMembers: 100, ...over };
}

function channelSignals(effects: PresenceEffect[], kind: Signal["kind"]): Signal[] {
  return effects.flatMap((e) => (e.to === "channel" && e.signal.kind === kind ? [e.signal] : []));
}

function userSignals(effects: PresenceEffect[]): { to: string; signal: Signal }[] {
  return effects.flatMap((e) => (e.to === "user" ? [{ to: e.userId, signal: e.signal }] : []));
}

describe("PresenceCore membership", () => {
  // User level: the second connection of a user must not announce a second join.
  it("joins a user once and leaves only with its last connection", () => {
    const core = new PresenceCore(true, 7);
    const a = core.join("g1", join({ connectionId: "c1", userId: "u1", info: { n: 1 } }));
    expect(channelSignals(a.effects, "member")).toEqual([
      {
        kind: "member",
        action: "joined",
        userId: "u1",
        info: { n: 1 },
        excludeConnectionId: "c1",
        version: [7, 1],
      },
    ]);
    expect(a.outcome).toEqual({
      ok: true,
      members: [{ userId: "u1", info: { n: 1 }, status: "offline" }],
      subscriberCount: 1,
      version: [7, 1],
    });
    const b = core.join("g2", join({ connectionId: "c2", userId: "u1" }));
    expect(channelSignals(b.effects, "member")).toEqual([]);
    expect(core.subscriberCount(APP, "presence-room")).toBe(2);
    expect(channelSignals(core.leave(APP, "presence-room", "c1"), "member")).toEqual([]);
    expect(channelSignals(core.close(APP, "c2"), "member")).toEqual([
      { kind: "member", action: "left", userId: "u1", info: { n: 1 }, version: [7, 2] },
    ]);
    expect(core.members(APP, "presence-room")).toEqual([]);
    expect(core.channels(APP)).toEqual([]);
  });

  // A member list taken at version v has exactly the changes stamped up to v, so a new
  // subscriber can drop the signals its list already has and keep the later ones.
  it("stamps membership signals with growing versions and the join outcome with its own", () => {
    const core = new PresenceCore(true, 3);
    const a = core.join("g", join({ connectionId: "c1", userId: "u1" }));
    const b = core.join("g", join({ connectionId: "c2", userId: "u2" }));
    const c = core.join("g", join({ connectionId: "c3", userId: "u1" }));
    expect(a.outcome.ok && a.outcome.version).toEqual([3, 1]);
    expect(b.outcome.ok && b.outcome.version).toEqual([3, 2]);
    // Nothing announced by the second connection of u1: the version does not move.
    expect(c.outcome.ok && c.outcome.version).toEqual([3, 2]);
    const left = channelSignals(core.close(APP, "c2"), "member");
    expect(left.map((x) => x.kind === "member" && x.version)).toEqual([[3, 3]]);
    expect(core.version()).toEqual([3, 3]);
  });

  // The limit counts distinct users, and a user already in never counts as "new".
  it("refuses a new user on a full channel but admits a member's other connection", () => {
    const core = new PresenceCore();
    core.join("g", join({ connectionId: "c1", userId: "u1", maxMembers: 1 }));
    expect(
      core.join("g", join({ connectionId: "c2", userId: "u2", maxMembers: 1 })).outcome,
    ).toEqual({
      ok: false,
      reason: "full",
    });
    expect(
      core.join("g", join({ connectionId: "c3", userId: "u1", maxMembers: 1 })).outcome.ok,
    ).toBe(true);
    expect(core.subscriberCount(APP, "presence-room")).toBe(2);
  });

  // Anonymous and non-member subscriptions count but never appear as members.
  it("counts non-member connections without membership", () => {
    const core = new PresenceCore();
    const r = core.join("g", {
      appId: APP,
      channel: "news",
      connectionId: "c1",
      member: false,
      maxMembers: 1,
    });
    expect(r.effects).toEqual([
      { to: "occupancy", appId: APP, channel: "news", occupied: true },
      { to: "count", appId: APP, channel: "news", count: 1 },
    ]);
    core.join("g", {
      appId: APP,
      channel: "news",
      connectionId: "c2",
      member: false,
      maxMembers: 1,
    });
    expect(core.channels(APP)).toEqual([{ channel: "news", subscriptionCount: 2 }]);
  });

  // Pusher's channel_occupied/vacated webhooks fire once per cluster: on the
  // first subscription anywhere and when the last one goes, never in between.
  it("reports occupancy on the first subscription and the last unsubscription only", () => {
    const core = new PresenceCore();
    const occupancy = (effects: PresenceEffect[]) =>
      effects.flatMap((e) => (e.to === "occupancy" ? [e.occupied] : []));
    const first = core.join("g1", join({ connectionId: "c1", userId: "u1" }));
    expect(first.effects.map((e) => e.to)).toEqual(["occupancy", "channel", "count"]);
    expect(occupancy(core.join("g2", join({ connectionId: "c2", userId: "u2" })).effects)).toEqual(
      [],
    );
    expect(occupancy(core.leave(APP, "presence-room", "c1"))).toEqual([]);
    const last = core.close(APP, "c2");
    expect(last.map((e) => e.to)).toEqual(["channel", "count", "occupancy"]);
    expect(occupancy(last)).toEqual([false]);
    expect(occupancy(core.dropGateway("g2"))).toEqual([]);
  });

  // Re-sent reports (client retries, resync) must change nothing.
  it("is idempotent for repeated joins, leaves and closes", () => {
    const core = new PresenceCore();
    core.join("g", join({ connectionId: "c1", userId: "u1" }));
    expect(core.join("g", join({ connectionId: "c1", userId: "u1" })).effects).toEqual([]);
    core.close(APP, "c1");
    expect(core.close(APP, "c1")).toEqual([]);
    expect(core.leave(APP, "presence-room", "c1")).toEqual([]);
  });
});

describe("PresenceCore status and watchlists", () => {
  // Watchers learn online/offline transitions, not every connection.
  it("tells watchers when a user comes online and goes offline", () => {
    const core = new PresenceCore();
    core.open("g", APP, "w1", "watcher", ["u1"]);
    const on = core.open("g", APP, "c1", "u1", []);
    expect(userSignals(on)).toEqual([
      { to: "watcher", signal: { kind: "watch", userId: "u1", online: true } },
      { to: "watcher", signal: { kind: "status", userId: "u1", status: "online" } },
    ]);
    expect(userSignals(core.open("g", APP, "c2", "u1", []))).toEqual([]);
    expect(userSignals(core.close(APP, "c1"))).toEqual([]);
    expect(userSignals(core.close(APP, "c2"))).toEqual([
      { to: "watcher", signal: { kind: "watch", userId: "u1", online: false } },
      { to: "watcher", signal: { kind: "status", userId: "u1", status: "offline" } },
    ]);
  });

  // `offline` hides a connected user; channels and watchers see it go.
  it("fans manual status out to member channels and watchers; offline hides", () => {
    const core = new PresenceCore();
    core.open("g", APP, "w1", "watcher", ["u1"]);
    core.open("g", APP, "c1", "u1", []);
    core.join("g", join({ connectionId: "c1", userId: "u1" }));
    const away = core.setStatus(APP, "u1", "away");
    expect(channelSignals(away, "status")).toEqual([
      { kind: "status", userId: "u1", status: "away" },
    ]);
    expect(userSignals(away)).toEqual([
      { to: "watcher", signal: { kind: "status", userId: "u1", status: "away" } },
    ]);
    const hidden = core.setStatus(APP, "u1", "offline");
    expect(userSignals(hidden).map((s) => s.signal.kind)).toEqual(["watch", "status"]);
    expect(core.status(APP, "u1")).toBe("offline");
    expect(core.members(APP, "presence-room")).toEqual([{ userId: "u1", status: "offline" }]);
    // A status for a disconnected user is kept for its next connection, silently.
    core.close(APP, "c1");
    expect(core.setStatus(APP, "u1", "dnd")).toEqual([]);
    core.open("g", APP, "c3", "u1", []);
    expect(core.status(APP, "u1")).toBe("dnd");
  });

  // herald.md sends presence.changed to the subscribers of every stream the user is in,
  // so the fan-out follows subscriptions, member or not, and stops when the last one goes.
  it("fans status out to every channel the user is subscribed to, member or not", () => {
    const core = new PresenceCore();
    core.open("g", APP, "c1", "u1", []);
    core.open("g", APP, "c2", "u1", []);
    core.join("g", join({ connectionId: "c1", userId: "u1" }));
    core.join("g", join({ connectionId: "c1", userId: "u1", channel: "plain", member: false }));
    core.join("g", join({ connectionId: "c2", userId: "u1", channel: "plain", member: false }));
    core.join("g", join({ connectionId: "anon", channel: "elsewhere", member: false }));
    const channels = (effects: PresenceEffect[]) =>
      effects.flatMap((e) => (e.to === "channel" && e.signal.kind === "status" ? [e.channel] : []));
    expect(channels(core.setStatus(APP, "u1", "away")).sort()).toEqual(["plain", "presence-room"]);
    core.leave(APP, "plain", "c1");
    expect(channels(core.setStatus(APP, "u1", "dnd")).sort()).toEqual(["plain", "presence-room"]);
    core.leave(APP, "plain", "c2");
    expect(channels(core.setStatus(APP, "u1", "online"))).toEqual(["presence-room"]);
  });

  // Watch counts are per watcher connection: one closing must not stop the other's watch.
  it("keeps watching while any watcher connection lists the user", () => {
    const core = new PresenceCore();
    core.open("g", APP, "w1", "watcher", ["u1"]);
    core.open("g", APP, "w2", "watcher", ["u1"]);
    core.close(APP, "w1");
    expect(userSignals(core.open("g", APP, "c1", "u1", [])).length).toBe(2);
  });
});

describe("PresenceCore sync, gateway loss and reload", () => {
  // A rebuilt owner must announce only what really changed while nobody owned the channel.
  it("sync emits only real differences, additions before removals", () => {
    const core = new PresenceCore();
    core.join("g1", join({ connectionId: "c1", userId: "u1" }));
    core.join("g1", join({ connectionId: "c2", userId: "u2" }));
    const effects = core.syncGateway("g1", [
      {
        appId: APP,
        connectionId: "c9",
        opened: false,
        watchlist: [],
        subs: [{ channel: "presence-room", userId: "u1", member: true }],
      },
      {
        appId: APP,
        connectionId: "c3",
        opened: false,
        watchlist: [],
        subs: [{ channel: "presence-room", userId: "u3", member: true }],
      },
    ]);
    expect(
      channelSignals(effects, "member").map(
        (s) => s.kind === "member" && `${s.action}:${s.userId}`,
      ),
    ).toEqual(["joined:u3", "left:u2"]);
    expect(core.members(APP, "presence-room").map((m) => m.userId)).toEqual(["u1", "u3"]);
  });

  // A dead gateway takes its connections with it, but not other gateways' connections of the same user.
  it("dropGateway removes only that gateway's connections", () => {
    const core = new PresenceCore();
    core.join("g1", join({ connectionId: "c1", userId: "u1" }));
    core.join("g2", join({ connectionId: "c2", userId: "u1" }));
    core.join("g1", join({ connectionId: "c3", userId: "u3" }));
    const effects = core.dropGateway("g1");
    expect(channelSignals(effects, "member")).toEqual([
      { kind: "member", action: "left", userId: "u3", version: [0, 3] },
    ]);
    expect(core.gateways()).toEqual(new Set(["g2"]));
  });

  // What a previous owner persisted was already announced: reloading it is silent.
  it("load restores state without effects or dirty records", () => {
    const a = new PresenceCore();
    a.open("g1", APP, "c1", "u1", ["u2"]);
    a.join("g1", join({ connectionId: "c1", userId: "u1" }));
    a.setStatus(APP, "u1", "away");
    const record = a.connection(APP, "c1");
    if (!record) throw new Error("record missing");
    const b = new PresenceCore();
    b.load([structuredClone(record)], [{ appId: APP, userId: "u1", status: "away" }]);
    expect(b.takeDirty()).toEqual({ connections: [], statuses: [] });
    expect(b.members(APP, "presence-room")).toEqual([{ userId: "u1", status: "away" }]);
    const again = b.syncGateway("g1", [structuredClone(record)]);
    expect(again).toEqual([]);
  });

  it("reports changed connections and statuses once", () => {
    const core = new PresenceCore();
    core.join("g", join({ connectionId: "c1", userId: "u1" }));
    core.setStatus(APP, "u1", "dnd");
    expect(core.takeDirty()).toEqual({
      connections: [{ appId: APP, connectionId: "c1" }],
      statuses: [{ appId: APP, userId: "u1" }],
    });
    expect(core.takeDirty()).toEqual({ connections: [], statuses: [] });
  });
});
