import type { StreamInfo } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_SPREAD_LIMITS,
  LEADER_LOCK_KEY,
  type LeaderOps,
  spreadLeaders,
  takeLeaderLock,
} from "./js-leaders.js";
import { MemoryEngine } from "./memory.js";

interface FakeStream {
  leader: string | undefined;
  peers: string[];
  /** Peers that are behind the leader (not current). */
  lagging?: string[];
  /** Info requests fail (no answer). */
  silent?: boolean;
}

/**
 * A cluster with as many nodes as a case needs, which a real test could not
 * start on this box. A stepdown elects the preferred peer (2.11+) or, with
 * `random`, the next one the generator picks (2.9).
 */
class FakeCluster implements LeaderOps {
  stepdowns: string[] = [];
  paused = 0;
  constructor(
    readonly streams: Record<string, FakeStream>,
    private readonly random?: () => number,
  ) {}

  async info(name: string): Promise<StreamInfo | null> {
    const s = this.streams[name];
    if (!s || s.silent) return null;
    const replicas = s.peers
      .filter((p) => p !== s.leader)
      .map((p) => ({ name: p, current: !s.lagging?.includes(p), active: 0, offline: false }));
    return { config: { name }, cluster: { leader: s.leader, replicas } } as unknown as StreamInfo;
  }

  async stepDown(name: string, to: string): Promise<void> {
    const s = this.streams[name];
    if (!s) throw new Error(`no stream ${name}`);
    this.stepdowns.push(name);
    if (this.random) {
      const others = s.peers.filter((p) => p !== s.leader);
      s.leader = others[Math.floor(this.random() * others.length)];
    } else {
      s.leader = to;
    }
  }

  async pause(ms: number): Promise<void> {
    this.paused += ms;
  }

  leaders(): (string | undefined)[] {
    return Object.values(this.streams).map((s) => s.leader);
  }
}

const all3 = ["n1", "n2", "n3"];
const names = (c: FakeCluster) => Object.keys(c.streams);

/** A small deterministic generator, so the 2.9 case runs the same every time. */
function seeded(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe("spreadLeaders", () => {
  it("moves leaders gathered on one node to a node each", async () => {
    const c = new FakeCluster({
      a: { leader: "n1", peers: all3 },
      b: { leader: "n1", peers: all3 },
      c: { leader: "n1", peers: all3 },
    });
    const r = await spreadLeaders(names(c), c);
    expect(r.spread).toBe(true);
    expect(new Set(c.leaders()).size).toBe(3);
    expect(c.stepdowns).toHaveLength(2);
  });

  // nats-server 2.9 ignores the preferred leader: it takes a few random rounds.
  it("gets there with random elections too", async () => {
    const c = new FakeCluster(
      {
        a: { leader: "n1", peers: all3 },
        b: { leader: "n1", peers: all3 },
        c: { leader: "n1", peers: all3 },
      },
      seeded(7),
    );
    const r = await spreadLeaders(names(c), c);
    expect(r.spread).toBe(true);
    expect(new Set(c.leaders()).size).toBe(3);
  });

  it("asks nothing of leaders already spread", async () => {
    const c = new FakeCluster({
      a: { leader: "n1", peers: all3 },
      b: { leader: "n2", peers: all3 },
      c: { leader: "n3", peers: all3 },
      d: { leader: "n1", peers: all3 },
    });
    expect((await spreadLeaders(names(c), c)).spread).toBe(true);
    expect(c.stepdowns).toEqual([]);
  });

  // Each way of having to wait ends within the wait budget, not at a far deadline.
  it.each([
    [
      "the only free replica lags",
      {
        a: { leader: "n1", peers: all3, lagging: ["n3"] },
        b: { leader: "n1", peers: all3, lagging: ["n3"] },
      },
      { c: { leader: "n2", peers: all3 } },
    ],
    ["a stream does not answer", { a: { leader: "n1", peers: all3, silent: true } }, {}],
    ["a stream has no leader", { a: { leader: undefined, peers: all3 } }, {}],
  ])("gives up waiting when %s", async (_, some: Record<string, FakeStream>, more) => {
    const c = new FakeCluster({ b: { leader: "n1", peers: all3 }, ...some, ...more });
    const r = await spreadLeaders(names(c), c);
    expect(r.spread).toBe(false);
    expect(r.why).toMatch(/still waiting/);
    expect(c.paused).toBeLessThanOrEqual(
      DEFAULT_SPREAD_LIMITS.waitBudgetMs + DEFAULT_SPREAD_LIMITS.pollMs,
    );
  });

  // Five nodes, R3: a and b share n1, and each of their peers already leads one.
  it("stops at once when no move is possible", async () => {
    const c = new FakeCluster({
      a: { leader: "n1", peers: all3 },
      b: { leader: "n1", peers: all3 },
      c: { leader: "n2", peers: ["n2", "n4", "n5"] },
      d: { leader: "n3", peers: ["n3", "n4", "n5"] },
    });
    const r = await spreadLeaders(names(c), c);
    expect(r).toMatchObject({ spread: false, why: "no move possible" });
    expect(c.stepdowns).toEqual([]);
    expect(c.paused).toBe(0);
  });

  // Any peer that leads none of the app's partitions will do, not only a node of the first stream's.
  it("moves to whichever peer leads none of the partitions", async () => {
    const c = new FakeCluster({
      a: { leader: "n1", peers: ["n1", "n4", "n5"] },
      b: { leader: "n1", peers: all3 },
      c: { leader: "n2", peers: ["n2", "n3", "n4"] },
    });
    expect((await spreadLeaders(names(c), c)).spread).toBe(true);
    expect(new Set(c.leaders()).size).toBe(3);
  });

  it("stops when its signal aborts", async () => {
    const c = new FakeCluster({ a: { leader: undefined, peers: all3 } });
    const stop = new AbortController();
    stop.abort();
    expect(await spreadLeaders(names(c), c, DEFAULT_SPREAD_LIMITS, stop.signal)).toMatchObject({
      spread: false,
      why: "stopped",
    });
  });
});

describe("takeLeaderLock", () => {
  const kv = () => new MemoryEngine().kv("app", "cursors");

  it("lets one process hold it at a time", async () => {
    const store = kv();
    const release = await takeLeaderLock(store);
    expect(release).not.toBeNull();
    expect(await takeLeaderLock(store)).toBeNull();
    await release?.();
    expect(await takeLeaderLock(store)).not.toBeNull();
  });

  // A holder that died leaves its hold behind: it ends with its TTL.
  it("is taken over once a hold has expired, and the old holder's release leaves the new hold", async () => {
    const store = kv();
    let now = 1000;
    const stale = await takeLeaderLock(store, 100, () => now);
    now = 1200;
    const fresh = await takeLeaderLock(store, 100, () => now);
    expect(fresh).not.toBeNull();
    await stale?.();
    expect((await store.get(LEADER_LOCK_KEY))?.value).toEqual({ until: 1300 });
    expect(await takeLeaderLock(store, 100, () => now)).toBeNull();
  });
});
