import { describe, expect, it } from "vitest";
import type { Signal } from "../../../shared/src/model.js";
import type { PresenceChange } from "../../../shared/src/presence/api.js";
import { type ConnectionRecord, PresenceCore, type PresenceEffect } from "./core.js";

const APP = "app";

function pres(
  action: PresenceChange["action"],
  connectionId: string,
  over: Partial<PresenceChange> = {},
): PresenceChange {
  return { appId: APP, channel: "room", action, connectionId, clientId: "ann", ...over };
}

/** The presence signals among `effects`, as `action:clientId:connectionId[:data]`. */
function events(effects: PresenceEffect[]): string[] {
  return effects.flatMap((e) => {
    if (e.to !== "channel" || e.signal.kind !== "entry") return [];
    const s: Signal & { kind: "entry" } = e.signal;
    const data = s.data === undefined ? "" : `:${JSON.stringify(s.data)}`;
    return [`${e.channel}:${s.action}:${s.clientId}:${s.connectionId}${data}`];
  });
}

describe("PresenceCore connection-level presence", () => {
  // Foony semantics: one entry per connection, and every change is announced with its data.
  it("announces enter, update and leave per connection, with the last data on leave", () => {
    const core = new PresenceCore();
    expect(events(core.setPresence("g", pres("enter", "c1", { data: { mood: "ok" } })))).toEqual([
      'room:enter:ann:c1:{"mood":"ok"}',
    ]);
    // The same client on a second connection is a second entry.
    expect(events(core.setPresence("g", pres("enter", "c2")))).toEqual(["room:enter:ann:c2"]);
    expect(events(core.setPresence("g", pres("update", "c1", { data: "busy" })))).toEqual([
      'room:update:ann:c1:"busy"',
    ]);
    expect(core.present(APP, "room")).toEqual([
      { clientId: "ann", connectionId: "c1", data: "busy" },
      { clientId: "ann", connectionId: "c2" },
    ]);
    expect(events(core.setPresence("g", pres("leave", "c1")))).toEqual([
      'room:leave:ann:c1:"busy"',
    ]);
    expect(events(core.setPresence("g", pres("leave", "c2", { data: "bye" })))).toEqual([
      'room:leave:ann:c2:"bye"',
    ]);
    expect(core.present(APP, "room")).toEqual([]);
    // Nothing left of either connection: no record to persist or to reap later.
    expect(core.connection(APP, "c1")).toBeUndefined();
    expect(core.gateways()).toEqual(new Set());
  });

  // A report retried across a failover, or an update that changes nothing, must not re-announce.
  it("announces nothing for a change that changes nothing; an enter while present is an update", () => {
    const core = new PresenceCore();
    core.setPresence("g", pres("enter", "c1", { data: { a: 1 } }));
    expect(events(core.setPresence("g", pres("enter", "c1", { data: { a: 1 } })))).toEqual([]);
    expect(events(core.setPresence("g", pres("update", "c1", { data: { a: 1 } })))).toEqual([]);
    expect(events(core.setPresence("g", pres("enter", "c1", { data: { a: 2 } })))).toEqual([
      'room:update:ann:c1:{"a":2}',
    ]);
    expect(events(core.setPresence("g", pres("leave", "c9")))).toEqual([]);
    expect(events(core.setPresence("g", pres("leave", "c1", { channel: "other" })))).toEqual([]);
  });

  // Entries need no subscription and are not subscribers: counts and occupancy stay subscription-only.
  it("keeps entries out of subscriber counts, occupancy and channel listings", () => {
    const core = new PresenceCore();
    const effects = core.setPresence("g", pres("enter", "c1"));
    expect(effects.filter((e) => e.to !== "channel")).toEqual([]);
    expect(core.subscriberCount(APP, "room")).toBe(0);
    expect(core.channels(APP)).toEqual([]);
  });

  // The point of routing Foony presence through the service: a closed connection's entries leave.
  it("a closed connection leaves every channel it entered, once", () => {
    const core = new PresenceCore();
    core.setPresence("g", pres("enter", "c1", { data: "x" }));
    core.setPresence("g", pres("enter", "c1", { channel: "hall" }));
    core.join("g", {
      appId: APP,
      channel: "room",
      connectionId: "c1",
      member: false,
      maxMembers: 9,
    });
    core.setPresence("g", pres("enter", "c2", { clientId: "bob" }));
    expect(events(core.close(APP, "c1")).sort()).toEqual([
      "hall:leave:ann:c1",
      'room:leave:ann:c1:"x"',
    ]);
    expect(events(core.close(APP, "c1"))).toEqual([]);
    expect(core.present(APP, "room")).toEqual([{ clientId: "bob", connectionId: "c2" }]);
  });

  // A dead gateway's entries leave; another gateway's stay.
  it("dropGateway leaves the entries of that gateway's connections only", () => {
    const core = new PresenceCore();
    core.setPresence("g1", pres("enter", "c1"));
    core.setPresence("g1", pres("enter", "c2", { clientId: "bob" }));
    core.setPresence("g2", pres("enter", "c3", { clientId: "cat" }));
    expect(events(core.dropGateway("g1")).sort()).toEqual([
      "room:leave:ann:c1",
      "room:leave:bob:c2",
    ]);
    expect(core.present(APP, "room")).toEqual([{ clientId: "cat", connectionId: "c3" }]);
  });

  // Takeover: the gateway's truth diffed against the loaded state announces only real changes.
  it("sync announces only entries that changed, additions before removals", () => {
    const core = new PresenceCore();
    core.setPresence("g", pres("enter", "c1", { data: 1 }));
    core.setPresence("g", pres("enter", "c2", { clientId: "bob" }));
    core.setPresence("g", pres("enter", "c3", { clientId: "cat", channel: "hall" }));
    const conn = (id: string, present: ConnectionRecord["present"]) => ({
      appId: APP,
      connectionId: id,
      opened: false,
      watchlist: [],
      subs: [],
      present,
    });
    const same = [
      conn("c1", [{ channel: "room", clientId: "ann", data: 1 }]),
      conn("c2", [{ channel: "room", clientId: "bob" }]),
      conn("c3", [{ channel: "hall", clientId: "cat" }]),
    ];
    expect(core.syncGateway("g", same)).toEqual([]);
    const changed = [
      conn("c1", [{ channel: "room", clientId: "ann", data: 2 }]),
      conn("c3", []),
      conn("c4", [{ channel: "room", clientId: "dan" }]),
    ];
    expect(events(core.syncGateway("g", changed))).toEqual([
      "room:update:ann:c1:2",
      "room:enter:dan:c4",
      "hall:leave:cat:c3",
      "room:leave:bob:c2",
    ]);
  });

  // A new owner restores what the old one announced without announcing it again.
  it("load restores entries silently; records written before entries existed load as none", () => {
    const before = new PresenceCore();
    before.setPresence("g", pres("enter", "c1", { data: { n: 1 } }));
    const record = before.connection(APP, "c1");
    expect(record?.present).toEqual([{ channel: "room", clientId: "ann", data: { n: 1 } }]);
    expect(before.takeDirty().connections).toEqual([{ appId: APP, connectionId: "c1" }]);

    const after = new PresenceCore();
    const old: ConnectionRecord = {
      appId: APP,
      connectionId: "c0",
      gatewayId: "g",
      opened: false,
      watchlist: [],
      subs: [{ channel: "room", member: false }],
    };
    after.load([structuredClone(record as ConnectionRecord), old], []);
    expect(after.present(APP, "room")).toEqual([
      { clientId: "ann", connectionId: "c1", data: { n: 1 } },
    ]);
    expect(after.takeDirty()).toEqual({ connections: [], statuses: [] });
    expect(events(after.dropGateway("g"))).toEqual(['room:leave:ann:c1:{"n":1}']);
  });
});
