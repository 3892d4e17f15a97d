import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../src/engine/engine.js";
import { JetStreamEngine, StreamPartitionsError } from "../src/engine/jetstream.js";
import { LEADER_LOCK_KEY } from "../src/engine/js-leaders.js";
import { streamStates } from "../src/engine/js-streams.js";
import { liveWildcard, partitionOf, streamName } from "../src/subjects.js";
import { describeEngineContract } from "./engine.contract.js";
import { type NatsHandle, natsServerBinaries, startCluster, startNats } from "./nats-harness.js";
import { waitFor } from "./wait.js";

const limits = { historyPerChannel: 100, historyMaxAgeSec: 0, dedupeWindowSec: 60 };
let nats: NatsHandle;
beforeAll(async () => {
  nats = await startNats({ jetstream: true });
});
afterAll(async () => {
  await nats?.stop();
});

/** The engine with every app it prepares spread over `partitions` streams. */
function partitioned(engine: JetStreamEngine, partitions: number): Engine {
  return new Proxy(engine, {
    get(target, key) {
      if (key === "ensureApp") {
        return (appId: string, l: Parameters<Engine["ensureApp"]>[1]) =>
          target.ensureApp(appId, { ...l, streamPartitions: partitions });
      }
      const value: unknown = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

// The contract, unchanged, on apps of four streams: what clients see must not
// depend on how many streams hold an app's channels.
describeEngineContract("jetstream, 4 stream partitions", async () => {
  const engine = await JetStreamEngine.connect({ servers: nats.urls, name: "contract-4" });
  return { engine: partitioned(engine, 4), dispose: () => engine.close() };
});

describe("jetstream stream partitions", () => {
  let engine: JetStreamEngine;
  // The console's view of the streams, read on a connection of its own.
  let raw: NatsConnection;
  const states = (app: string) => streamStates(raw, [app]);
  beforeAll(async () => {
    engine = await JetStreamEngine.connect({ servers: nats.urls, name: "partitions" });
    raw = await connect({ servers: nats.urls });
  });
  afterAll(async () => {
    await engine?.close();
    await raw?.close();
  });

  // Existing deployments read their history with no migration: one partition is today's stream.
  it("keeps one stream, TIDINGS_<app>, at one partition", async () => {
    const app = `one${Date.now()}`;
    await engine.ensureApp(app, limits);
    await engine.ensureApp(app, { ...limits, streamPartitions: 1 });
    const r = await engine.publish(app, "room", { name: "x", data: 1 });
    const found = await states(app);
    expect(found.map((s) => s.stream)).toEqual([streamName(app)]);
    expect(found[0]?.lastSeq).toBe(r.seq);
  });

  // Channels spread over every partition, and the console sees each stream.
  it("stores each channel in its own partition's stream and reports every stream", async () => {
    const app = `four${Date.now()}`;
    await engine.ensureApp(app, { ...limits, streamPartitions: 4 });
    const channels = Array.from({ length: 12 }, (_, i) => `room-${i}`);
    for (const c of channels) await engine.publish(app, c, { name: "x", data: c });
    const found = await states(app);
    expect(found.map((s) => s.stream)).toEqual([0, 1, 2, 3].map((p) => streamName(app, p, 4)));
    const perPartition = [0, 1, 2, 3].map((p) => channels.filter((c) => partitionOf(c, 4) === p));
    expect(found.map((s) => s.messages)).toEqual(perPartition.map((cs) => cs.length));
    expect(found.map((s) => s.subjects)).toEqual(perPartition.map((cs) => cs.length));
  });

  // Reading a new layout would show empty history for every moved channel: refuse, never hide it.
  it("refuses an app whose streams were made for another partition count", async () => {
    const app = `moved${Date.now()}`;
    await engine.ensureApp(app, limits);
    const kept = await engine.publish(app, "room", { name: "x", data: "kept" });
    const refusal = engine.ensureApp(app, { ...limits, streamPartitions: 4 });
    await expect(refusal).rejects.toBeInstanceOf(StreamPartitionsError);
    await expect(refusal).rejects.toThrow(
      `app ${app}: streamPartitions is 4, but its events are in streams made for 1 (${streamName(app)})`,
    );
    // Nothing was created beside the old stream, and its history still reads.
    expect((await states(app)).map((s) => s.stream)).toEqual([streamName(app)]);
    await engine.ensureApp(app, limits);
    const page = await engine.history(app, "room", { afterSeq: 0, limit: 10 });
    expect(page.events.map((e) => e.seq)).toEqual([kept.seq]);

    const spread = `spread${Date.now()}`;
    await engine.ensureApp(spread, { ...limits, streamPartitions: 4 });
    await expect(engine.ensureApp(spread, limits)).rejects.toThrow(
      `streamPartitions is 1, but its events are in streams made for 4`,
    );
    await expect(engine.ensureApp(spread, { ...limits, streamPartitions: 2 })).rejects.toThrow(
      "made for 4",
    );
  });

  // An operator's own stream on the app's subjects holds none of our events: it must not stop the app.
  it("ignores streams on the app's subjects that Tidings did not make", async () => {
    const jsm = await jetstreamManager(raw);
    for (const n of [1, 4]) {
      const app = `audited${n}x${Date.now()}`;
      await jsm.streams.add({ name: `AUDIT_${app}`, subjects: [liveWildcard(app)] });
      await engine.ensureApp(app, { ...limits, streamPartitions: n });
      await engine.ensureApp(app, { ...limits, streamPartitions: n });
      const r = await engine.publish(app, "room", { name: "x", data: 1 });
      expect(await engine.lastSeq(app, "room")).toBe(r.seq);
      // The audit stream got the RePublished copy, and another count is still refused.
      await waitFor(async () => (await jsm.streams.info(`AUDIT_${app}`)).state.messages === 1, {
        what: "the audit stream's copy",
      });
      await expect(
        engine.ensureApp(app, { ...limits, streamPartitions: n === 1 ? 4 : 1 }),
      ).rejects.toThrow(`events are in streams made for ${n} (`);
    }
  });

  // Below a bound between two seqs means at or below the lower one.
  it("reads history before a non-integer seq", async () => {
    const app = `frac${Date.now()}`;
    await engine.ensureApp(app, { ...limits, streamPartitions: 4 });
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++)
      seqs.push((await engine.publish(app, "room", { name: "x", data: i })).seq);
    const [first, second] = seqs as [number, number, number];
    const page = await engine.history(app, "room", { beforeSeq: second + 0.5, limit: 10 });
    expect(page.events.map((e) => e.seq)).toEqual([first, second]);
  });

  it("rejects a partition count out of bounds", async () => {
    await expect(engine.ensureApp("bounds", { ...limits, streamPartitions: 0 })).rejects.toThrow(
      "streamPartitions must be 1..64",
    );
  });
});

describe.each(natsServerBinaries())("stream partitions on a 3-node cluster, $label", ({ bin }) => {
  // A stream's leader does all its writes: partitions led by one node share its ceiling.
  it.skipIf(!bin)("spreads the leaders of an app's partitions over the nodes", async () => {
    await using cluster = await startCluster(3, { jetstream: true, bin: bin ?? undefined });
    const errors: unknown[] = [];
    const open = (name: string) =>
      JetStreamEngine.connect({
        servers: cluster.urls,
        name,
        replicas: 3,
        onError: (err) => errors.push(err),
      });
    // Two gateways starting at once: one of them spreads, under the lock.
    const [engine, other] = await Promise.all([open("leaders"), open("leaders-2")]);
    const nc = await connect({ servers: cluster.urls });
    try {
      const app = "spread";
      await Promise.all(
        [engine, other].map((e) => e.ensureApp(app, { ...limits, streamPartitions: 3 })),
      );
      const jsm = await jetstreamManager(nc);
      // Info is answered by each stream's leader: none while it is electing one.
      const leaders = async () =>
        Promise.all(
          [0, 1, 2].map((p) =>
            jsm.streams.info(streamName(app, p, 3)).then(
              (info) => info.cluster?.leader,
              () => undefined,
            ),
          ),
        );
      await waitFor(
        async () => {
          const led = await leaders();
          return !led.includes(undefined) && new Set(led).size === 3;
        },
        { timeoutMs: 30_000, what: "three partitions led by three nodes" },
      ).catch((err: Error) => {
        // Why spreading gave up, if it did, is in what the engines reported.
        throw new Error(`${err.message}; reported: ${errors.map(String).join("; ") || "nothing"}`);
      });
      // Spreading ran in the background and let go of the lock when done.
      await waitFor(
        async () => {
          const hold = await engine.kv(app, "cursors").get(LEADER_LOCK_KEY);
          return (hold?.value as { until?: number } | undefined)?.until === 0;
        },
        { timeoutMs: 30_000, what: "the spreading lock released" },
      );
      expect(errors).toEqual([]);
      const r = await engine.publish(app, "room", { name: "x", data: 1 });
      expect(await engine.lastSeq(app, "room")).toBe(r.seq);
    } finally {
      await nc.close();
      await Promise.all([engine.close(), other.close()]);
    }
  });
});
