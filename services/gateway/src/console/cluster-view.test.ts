import { describe, expect, it } from "vitest";
import { localBus } from "../../../../shared/src/cluster/bus.js";
import type { ProcessStats } from "../../../../shared/src/cluster/messages.js";
import { at } from "../../../../shared/test/defined.js";
import { ClusterView, HISTORY_SAMPLES } from "./cluster-view.js";

function stats(id: string, over: Partial<ProcessStats> = {}): ProcessStats {
  return {
    type: "stats",
    kind: "gateway",
    id,
    host: "h",
    pid: 1,
    startedAt: 0,
    at: 0,
    intervalMs: 1000,
    draining: false,
    natsConnected: true,
    rssBytes: 1,
    heapUsedBytes: 1,
    loopLagP99Ms: 0,
    loopLagMaxMs: 0,
    gateway: {
      connections: 5,
      channels: 2,
      msgsInPerSec: 7,
      msgsOutPerSec: 9,
      apps: { a1: { connections: 3, channels: 1 }, a2: { connections: 2, channels: 1 } },
    },
    ...over,
  };
}

describe("cluster view", () => {
  it("aggregates what the bus carries, marks silent and draining processes, forgets dead ones", () => {
    let now = 0;
    const bus = localBus();
    const view = new ClusterView(bus, () => now);
    bus.publishStats(stats("g1"));
    bus.publishStats(stats("g2", { draining: true }));
    bus.publishStats(stats("p1", { kind: "presence", gateway: undefined, partitions: 16 }));
    const states = () =>
      Object.fromEntries(view.processes({ kind: "cluster" }).map((p) => [p.id, p.state]));
    expect(states()).toEqual({ g1: "up", g2: "draining", p1: "up" });
    expect(view.liveGateways()).toBe(2);
    now = 4000;
    bus.publishStats(stats("g1"));
    expect(states()).toEqual({ g1: "up", g2: "silent", p1: "silent" });
    expect(view.liveGateways()).toBe(1);
    now = 70_000;
    bus.publishStats(stats("g1"));
    expect(states()).toEqual({ g1: "up" });
    view.close();
  });

  it("shows an app-scoped session only its app's share, without cluster-wide rates", () => {
    const bus = localBus();
    const view = new ClusterView(bus, () => 0);
    bus.publishStats(stats("g1"));
    const [cluster] = view.processes({ kind: "cluster" });
    expect(cluster).toMatchObject({ connections: 5, channels: 2, msgsInPerSec: 7 });
    const scoped = at(view.processes({ kind: "app", appId: "a2" }), 0, "the app's process");
    expect(scoped).toMatchObject({ connections: 2, channels: 1, msgsInPerSec: null });
    expect(scoped.history.map((h) => h.connections)).toEqual([2]);
  });

  it("keeps a bounded history per process", () => {
    const bus = localBus();
    const view = new ClusterView(bus, () => 0);
    for (let i = 0; i < HISTORY_SAMPLES + 10; i++) bus.publishStats(stats("g1", { at: i }));
    const p = at(view.processes({ kind: "cluster" }), 0, "the cluster's process");
    expect(p.history).toHaveLength(HISTORY_SAMPLES);
    expect(at(p.history, -1).at).toBe(HISTORY_SAMPLES + 9);
  });
});
