/**
 * Foony presence across a real cluster (nats-server, a presence replica, two
 * gateway processes): entries live in the presence service, so a gateway
 * killed with SIGKILL still has its connections' leaves announced, and a
 * late subscriber on another gateway learns the current set from its `sub`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../shared/test/wait.js";
import { type FoonyFrame, foonyConnect, foonyJwt, isT, req } from "./foony-client.js";
import { startTwoGateways, type TwoGateways } from "./processes.js";

let cluster: TwoGateways;
beforeAll(async () => {
  cluster = await startTwoGateways();
});
afterAll(async () => {
  await cluster?.stop();
});

const presence = (f: FoonyFrame) =>
  `${String(f.action)}:${String(f.clientId)}:${String(f.connectionId)}`;

describe("foony presence across gateways", () => {
  it("a killed gateway's entries leave; late subscribers get the current set", async () => {
    const { g1, g2 } = cluster;
    const watcher = await foonyConnect(g2.url, foonyJwt({ sub: "watcher" }));
    await req(watcher, { t: "sub", channel: "lobby" });

    // Two connections of one client on the gateway that will die, one client on the survivor.
    const ann1 = await foonyConnect(g1.url, foonyJwt({ sub: "ann" }));
    const ann2 = await foonyConnect(g1.url, foonyJwt({ sub: "ann" }));
    const bob = await foonyConnect(g2.url, foonyJwt({ sub: "bob" }));
    const [a1, a2, b] = [ann1, ann2, bob].map((c) => String(c.connected.connectionId));
    expect(
      await req(ann1, { t: "pres", channel: "lobby", action: "enter", data: { n: 1 } }),
    ).toMatchObject({ t: "ack" });
    await req(ann2, { t: "pres", channel: "lobby", action: "enter" });
    await req(bob, { t: "pres", channel: "lobby", action: "enter", data: "b" });
    await waitFor(() => watcher.all<FoonyFrame>(isT("presEvt")).length === 3, {
      what: "three enters on the other gateway",
    });
    expect(watcher.all<FoonyFrame>(isT("presEvt")).map(presence).sort()).toEqual(
      [`enter:ann:${a1}`, `enter:ann:${a2}`, `enter:bob:${b}`].sort(),
    );
    expect(watcher.all<FoonyFrame>(isT("presEvt", (f) => f.connectionId === a1))[0]?.data).toEqual({
      n: 1,
    });

    const late = await foonyConnect(g2.url, foonyJwt({ sub: "late" }));
    await req(late, { t: "sub", channel: "lobby" });
    await waitFor(() => late.all<FoonyFrame>(isT("presEvt")).length === 3, {
      what: "the set on sub",
    });
    expect(late.all<FoonyFrame>(isT("presEvt")).map(presence).sort()).toEqual(
      [`enter:ann:${a1}`, `enter:ann:${a2}`, `enter:bob:${b}`].sort(),
    );

    const killedAt = Date.now();
    await g1.kill("SIGKILL");
    await waitFor(
      () => watcher.all<FoonyFrame>(isT("presEvt", (f) => f.action === "leave")).length === 2,
      { timeoutMs: 15_000, what: "leaves of the killed gateway's connections" },
    );
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    const leaves = watcher.all<FoonyFrame>(isT("presEvt", (f) => f.action === "leave"));
    expect(leaves.map(presence).sort()).toEqual([`leave:ann:${a1}`, `leave:ann:${a2}`].sort());
    // A leave reports the data the entry had.
    expect(leaves.find((f) => f.connectionId === a1)?.data).toEqual({ n: 1 });

    // Exactly once: a later change on the survivor arrives after any repeat would have.
    await req(bob, { t: "pres", channel: "lobby", action: "update", data: "b2" });
    await watcher.next<FoonyFrame>(isT("presEvt", (f) => f.action === "update"));
    expect(watcher.all<FoonyFrame>(isT("presEvt", (f) => f.action === "leave")).length).toBe(2);

    const later = await foonyConnect(g2.url, foonyJwt({ sub: "later" }));
    await req(later, { t: "sub", channel: "lobby" });
    const set = await later.next<FoonyFrame>(isT("presEvt"));
    expect(set).toMatchObject({ action: "enter", clientId: "bob", connectionId: b, data: "b2" });
    // Bob's own close is announced by the service too.
    bob.close();
    await later.next<FoonyFrame>(
      isT("presEvt", (f) => f.action === "leave" && f.connectionId === b),
    );
    expect(later.all<FoonyFrame>(isT("presEvt", (f) => f.action === "enter")).length).toBe(1);
    for (const c of [watcher, late, later]) c.close();
  });
});
