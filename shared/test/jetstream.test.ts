import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineUnavailableError, type HistoryPage } from "../src/engine/engine.js";
import { JetStreamEngine } from "../src/engine/jetstream.js";
import type { Delivery } from "../src/model.js";
import { streamName } from "../src/subjects.js";
import { describeEngineContract } from "./engine.contract.js";
import { eventsOf, lossyLiveChannel } from "./lossy-live.js";
import { type NatsHandle, natsServerBinaries, startCluster, startNats } from "./nats-harness.js";
import { waitFor } from "./wait.js";

const limits = { historyPerChannel: 10_000, historyMaxAgeSec: 0, dedupeWindowSec: 60 };
let nats: NatsHandle;
beforeAll(async () => {
  nats = await startNats({ jetstream: true });
});
afterAll(async () => {
  await nats?.stop();
});

describeEngineContract("jetstream", async () => {
  const engine = await JetStreamEngine.connect({ servers: nats.urls, name: "contract" });
  return { engine, dispose: () => engine.close() };
});

describeEngineContract("jetstream, a live subscription per channel", async () => {
  const engine = await JetStreamEngine.connect({
    servers: nats.urls,
    name: "contract-channel",
    live: { subscriptions: "channel" },
  });
  return { engine, dispose: () => engine.close() };
});

// TIDINGS_LIVE_SUBSCRIPTIONS: what each mode costs on nats-server, and that
// per app a channel gets its own messages only (the rest of the app's are dropped).
describe.each(["app", "channel"] as const)("live subscriptions per %s", (mode) => {
  it("holds one NATS subscription per app or per channel, delivers each channel its own, and lets go of them", async () => {
    const app = `subs${mode}${Date.now()}`;
    const name = `subs-${mode}`;
    const nc = await connect({ servers: nats.urls, name });
    const subscriptions = async () =>
      (await nats.clients(0)).find((c) => c.name === name)?.subscriptions ?? -1;
    const engine = await JetStreamEngine.fromConnection(nc, { live: { subscriptions: mode } });
    try {
      await engine.ensureApp(app, limits);
      // The engine's request inboxes are made at its first subscribe: not a channel's.
      const warmUp = engine.subscribe(app, "warm-up", () => {});
      await warmUp.ready;
      warmUp.close();
      await nc.flush();
      const before = await subscriptions();
      const channels = ["a", "b", "c", "d", "e"];
      const got = new Map<string, number[]>(channels.map((c) => [c, []]));
      const subs = channels.map((c) =>
        engine.subscribe(app, c, (d) => {
          if (d.type === "event") got.get(c)?.push(d.event.data as number);
        }),
      );
      // A second subscriber on a channel shares its subscription.
      const again = engine.subscribe(app, "a", () => {});
      await Promise.all([...subs, again].map((s) => s.ready));
      await nc.flush();
      expect((await subscriptions()) - before).toBe(mode === "app" ? 1 : channels.length);

      // Channels nobody here holds: published to, never delivered.
      for (let i = 0; i < 20; i++) {
        await engine.publish(app, channels[i % channels.length] as string, { name: "n", data: i });
        await engine.publish(app, `elsewhere${i}`, { name: "n", data: 100 + i });
      }
      await waitFor(() => [...got.values()].every((g) => g.length === 4), {
        what: "4 events per channel",
      });
      channels.forEach((c, k) => {
        expect(got.get(c)).toEqual([k, k + 5, k + 10, k + 15]);
      });

      for (const sub of [...subs, again]) sub.close();
      await nc.flush();
      expect(await subscriptions()).toBe(before);
      // And a channel subscribed afresh subscribes again.
      const later = engine.subscribe(app, "a", () => {});
      await later.ready;
      await nc.flush();
      expect((await subscriptions()) - before).toBe(1);
      later.close();
    } finally {
      await engine.close();
      await nc.close();
    }
  });
});

describe("jetstream engine specifics", () => {
  let engine: JetStreamEngine;
  beforeAll(async () => {
    engine = await JetStreamEngine.connect({ servers: nats.urls, name: "specifics" });
  });
  afterAll(async () => {
    await engine?.close();
  });

  // Core NATS loses live messages on disconnects; subscribers must still see every event once.
  it("fills gaps in live delivery from the stream, in order, each once", async () => {
    const app = `gap${Date.now()}`;
    await engine.ensureApp(app, limits);
    const raw = await connect({ servers: nats.urls });
    try {
      // Drop a single event, a run of five, and the newest one (by payload index).
      const plan = new Set([3, 10, 11, 12, 13, 14, 29]);
      const dropped = new Set<number>();
      const { hub, got, errors, close } = await lossyLiveChannel(raw, app, "room.1", (msg) => {
        const body = JSON.parse(new TextDecoder().decode(msg.data)) as { data: number };
        if (!plan.has(body.data)) return false;
        dropped.add(body.data);
        return true;
      });
      const seqs: number[] = [];
      for (let i = 0; i < 30; i++) {
        seqs.push((await engine.publish(app, "room.1", { name: "n", data: i })).seq);
        // Seqs are app-wide: another channel's events sit inside every gap.
        await engine.publish(app, "other", { name: "n", data: i });
      }
      // The newest was dropped too, and no later event reveals it yet.
      // (Its RePublish may arrive after the publish's ack: wait for it to be dropped.)
      await waitFor(() => eventsOf(got).length === 29 && dropped.size === plan.size, {
        what: "29 events, the newest dropped",
      });
      hub.resume(); // what the engine does after a reconnect or a slow-consumer drop
      await waitFor(() => eventsOf(got).length === 30, { what: "the dropped newest event" });
      expect(eventsOf(got).map((e) => e.seq)).toEqual(seqs);
      expect(eventsOf(got).map((e) => e.data)).toEqual([...Array(30).keys()]);
      close();
      expect(errors).toEqual([]);
    } finally {
      await raw.close();
    }
  });

  // A process shares one connection between the engine and its other parts (services/roots/nats.ts).
  it("runs on the caller's connection and leaves it open when closed, without its subscriptions or consumers", async () => {
    const app = `shared${Date.now()}`;
    const nc = await connect({ servers: nats.urls, name: "shared" });
    const subscriptions = async () =>
      (await nats.clients(0)).find((c) => c.name === "shared")?.subscriptions;
    try {
      // The connection's own request inbox, which stays with it.
      const jsm = await jetstreamManager(nc);
      const before = await subscriptions();
      const shared = await JetStreamEngine.fromConnection(nc);
      await shared.ensureApp(app, limits);
      const { seq } = await shared.publish(app, "c", { name: "x", data: 1 });
      expect((await engine.history(app, "c", { limit: 10 })).events.map((e) => e.seq)).toEqual([
        seq,
      ]);
      // A replay's first page parks its consumer for the next (js-reader.ts, Cursor).
      await shared.publish(app, "c", { name: "x", data: 2 });
      const page = await shared.history(app, "c", { afterSeq: 0, limit: 1 });
      expect(page.hasMore).toBe(true);
      const consumers = async () => (await jsm.consumers.list(streamName(app)).next()).length;
      expect(await consumers()).toBe(1);
      expect(shared.isReady()).toBe(true);
      await shared.close();
      expect(shared.isReady()).toBe(false);
      expect(nc.isClosed()).toBe(false);
      await nc.flush();
      expect(await subscriptions()).toBe(before);
      await waitFor(async () => (await consumers()) === 0, { what: "the parked consumer deleted" });
    } finally {
      await nc.close();
    }
  });

  // Two gateways retrying the same client publish must store it once.
  it("dedupes an idempotency key across engine instances", async () => {
    const app = `idem${Date.now()}`;
    await engine.ensureApp(app, limits);
    const other = await JetStreamEngine.connect({ servers: nats.urls, name: "other" });
    try {
      await other.ensureApp(app, limits); // concurrent ensureApp must be harmless
      const a = await engine.publish(app, "c", { name: "x", data: 1 }, { idempotencyKey: "K" });
      const b = await other.publish(app, "c", { name: "x", data: 2 }, { idempotencyKey: "K" });
      expect(b).toEqual({ ...a, duplicate: true });
      const long = "k".repeat(300);
      const c = await other.publish(app, "c", { name: "x", data: 3 }, { idempotencyKey: long });
      const d = await engine.publish(app, "c", { name: "x", data: 4 }, { idempotencyKey: long });
      expect(d).toEqual({ ...c, duplicate: true });
      const page = await engine.history(app, "c", { afterSeq: 0, limit: 10 });
      expect(page.events.map((e) => e.data)).toEqual([1, 3]);
    } finally {
      await other.close();
    }
  });

  // "Newest N" cannot read backwards on 2.9; the density estimate must still page exactly.
  it("pages backward exactly on a sparse channel inside a busy app", async () => {
    const app = `sparse${Date.now()}`;
    await engine.ensureApp(app, limits);
    const sparse: number[] = [];
    for (let i = 0; i < 600; i++) {
      // Dense at first, then one sparse event per 20 busy ones.
      const ch = i < 100 || i % 20 === 0 ? "sparse" : "busy";
      const r = await engine.publish(app, ch, { name: "n", data: i });
      if (ch === "sparse") sparse.push(r.seq);
    }
    const all = (await engine.history(app, "sparse", { afterSeq: 0, limit: 1000 })).events;
    expect(all.map((e) => e.seq)).toEqual(sparse);
    for (const [before, limit] of [
      [undefined, 10],
      [sparse[110], 7],
      [sparse[105], 30],
      [sparse[3], 10],
      [sparse[0], 10],
    ] as const) {
      const page = await engine.history(app, "sparse", { beforeSeq: before, limit });
      const older = sparse.filter((s) => before === undefined || s < before);
      expect(page.events.map((e) => e.seq)).toEqual(older.slice(-limit));
      expect(page.hasMore).toBe(older.length > limit);
    }
  });

  // Many processes start at once; none may fail because another created the stream first.
  it("ensureApp converges under concurrency and applies new limits", async () => {
    const app = `ens${Date.now()}`;
    await Promise.all([1, 2, 3, 4].map(() => engine.ensureApp(app, limits)));
    await engine.ensureApp(app, { ...limits, historyPerChannel: 2 });
    for (let i = 0; i < 4; i++) await engine.publish(app, "c", { name: "x", data: i });
    const page = await engine.history(app, "c", { limit: 10 });
    expect(page.events.map((e) => e.data)).toEqual([2, 3]);
  });
});

describe("jetstream engine across a NATS restart", () => {
  // Readiness drives /readyz and publish must fail fast rather than hang a request.
  it("goes unready, fails fast, then resumes live delivery and fills gaps", async () => {
    await using server = await startNats({ jetstream: true });
    const engine = await JetStreamEngine.connect({ servers: server.urls, name: "restart" });
    const publisher = await JetStreamEngine.connect({ servers: server.urls, name: "pub" });
    try {
      const app = "restartapp";
      await engine.ensureApp(app, limits);
      const got: Delivery[] = [];
      const sub = engine.subscribe(app, "c", (d) => got.push(d));
      await sub.ready;
      const first = await publisher.publish(app, "c", { name: "x", data: 0 });
      await waitFor(() => eventsOf(got).length === 1);

      await server.kill(0);
      await waitFor(() => !engine.isReady(), { what: "engine unready" });
      const t0 = Date.now();
      await expect(engine.publish(app, "c", { name: "x", data: -1 })).rejects.toBeInstanceOf(
        EngineUnavailableError,
      );
      await expect(engine.lastSeq(app, "c")).rejects.toBeInstanceOf(EngineUnavailableError);
      expect(Date.now() - t0).toBeLessThan(500);

      await server.restart(0);
      await waitFor(() => publisher.isReady(), { what: "publisher reconnected" });
      // Published as soon as possible after the restart: the subscriber may or
      // may not have reconnected yet; either way it must see each event once.
      const seqs = [first.seq];
      for (let i = 1; i <= 5; i++) {
        seqs.push((await publisher.publish(app, "c", { name: "x", data: i })).seq);
      }
      await waitFor(() => engine.isReady(), { what: "engine reconnected" });
      await waitFor(() => eventsOf(got).length === 6, { what: "6 events" });
      seqs.push((await engine.publish(app, "c", { name: "x", data: 6 })).seq);
      await waitFor(() => eventsOf(got).length === 7, { what: "7 events" });
      expect(eventsOf(got).map((e) => e.seq)).toEqual(seqs);
      sub.close();
    } finally {
      await engine.close();
      await publisher.close();
    }
  });
});

describe.each(natsServerBinaries())("jetstream engine on a 3-node cluster, $label", ({ bin }) => {
  // Acknowledged means durable: a crashed stream leader must not lose or duplicate an acked event.
  it.skipIf(!bin)(
    "keeps every acknowledged publish exactly once when the stream leader is killed",
    async () => {
      await using cluster = await startCluster(3, { bin: bin ?? undefined });
      const engine = await JetStreamEngine.connect({
        servers: cluster.urls,
        name: "failover",
        replicas: 3,
      });
      try {
        const app = "failover";
        await engine.ensureApp(app, { ...limits, historyPerChannel: 100_000 });
        const leader = await cluster.streamLeader(streamName(app));
        const started = Date.now();
        const acked = new Map<number, number>(); // data -> seq
        let failed = 0;
        let next = 0;
        let killed = false;
        const worker = async () => {
          while (acked.size < 600) {
            const i = next++;
            try {
              const r = await engine.publish(app, "c", { name: "x", data: i });
              acked.set(i, r.seq);
            } catch (err) {
              expect(err).toBeInstanceOf(EngineUnavailableError);
              failed++;
              await waitFor(() => engine.isReady(), { timeoutMs: 20_000, what: "reconnect" });
            }
            if (!killed && acked.size >= 100) {
              killed = true;
              await cluster.kill(leader, "SIGKILL");
            }
          }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
        expect(killed).toBe(true);
        // Consumer-based reads need a meta leader too, which may still be electing.
        const read: { page?: HistoryPage | null } = {};
        await waitFor(
          async () => {
            read.page = await engine
              .history(app, "c", { afterSeq: 0, limit: 100_000 })
              .catch((err: unknown) => {
                if (err instanceof EngineUnavailableError) return null;
                throw err;
              });
            return read.page !== null;
          },
          { timeoutMs: 30_000, what: "history readable again" },
        );
        const page = read.page;
        if (!page) throw new Error("history never became readable");
        const seen = new Map<number, number>();
        for (const e of page.events) {
          const i = e.data as number;
          expect(seen.has(i)).toBe(false);
          seen.set(i, e.seq);
        }
        for (const [i, seq] of acked) expect(seen.get(i)).toBe(seq);
        console.info(
          `failover: leader n${leader} killed; ${acked.size} acked, ${failed} failed, ` +
            `${page.events.length} stored, ${Date.now() - started} ms`,
        );
      } finally {
        await engine.close();
      }
    },
  );
});
