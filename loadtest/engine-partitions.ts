/**
 * The publish ceiling of one app on a 3-node cluster with R3 streams, by
 * stream partitions (`streamPartitions`): publishes/s through the engine's
 * pipelined publisher (the gateway's path), one app spread over 1, 3 and 4
 * streams, rounds alternating between the counts in one run. Prints each
 * count's median and its ratio to one stream, and where the leaders were.
 *
 *   flock /tmp/tidings-bench.lock npx tsx loadtest/engine-partitions.ts \
 *     [--partitions 1,3,4] [--publishes 20000] [--rounds 3] [--batch 1000] \
 *     [--engines 1] [--channels 200] [--nats_bin /path/to/nats-server]
 *
 * `--engines` publishers (each its own connection, like that many gateways)
 * share the load.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { JetStreamEngine } from "../shared/src/engine/jetstream.js";
import { streamName } from "../shared/src/subjects.js";
import { startCluster } from "../shared/test/nats-harness.js";
import { benchOptions, fmt, median } from "./bench-kit.js";

const opts = benchOptions({
  partitions: "1,3,4",
  publishes: "20000",
  rounds: "3",
  batch: "1000",
  engines: "1",
  channels: "200",
  nats_bin: "",
});
const counts = opts.partitions.split(",").map(Number);
const PUBLISHES = Number(opts.publishes);
const BATCH = Number(opts.batch);
const CHANNELS = Number(opts.channels);
const limits = { historyPerChannel: 1_000, historyMaxAgeSec: 0, dedupeWindowSec: 120 };
const payload = { name: "msg", data: { text: "hello world, a typical short chat line" } };

await using cluster = await startCluster(3, {
  jetstream: true,
  bin: opts.nats_bin === "" ? undefined : opts.nats_bin,
});
const engines = await Promise.all(
  Array.from({ length: Number(opts.engines) }, (_, i) =>
    JetStreamEngine.connect({ servers: cluster.urls, name: `bench${i}`, replicas: 3 }),
  ),
);
const admin = await JetStreamEngine.connect({ servers: cluster.urls, name: "admin", replicas: 3 });
try {
  const first = engines[0];
  if (!first) throw new Error("--engines must be at least 1");
  // The engine keeps its connection to itself; the leaders are read on one of our own.
  const nc = await connect({ servers: cluster.urls });
  const jsm = await jetstreamManager(nc);
  const appOf = (n: number) => `bench-p${n}`;
  for (const n of counts) {
    await admin.ensureApp(appOf(n), { ...limits, streamPartitions: n });
    for (const e of engines) await e.ensureApp(appOf(n), { ...limits, streamPartitions: n });
    // Warm: stream files, JIT, leader caches.
    await Promise.all(
      Array.from({ length: 2_000 }, (_, i) => first.publish(appOf(n), `c${i % CHANNELS}`, payload)),
    );
  }
  const leaders = new Map<number, (string | undefined)[]>();
  for (const n of counts) {
    leaders.set(
      n,
      await Promise.all(
        Array.from({ length: n }, async (_, p) => {
          const info = await jsm.streams.info(streamName(appOf(n), p, n));
          return info.cluster?.leader;
        }),
      ),
    );
  }
  const run = async (n: number): Promise<number> => {
    const t0 = performance.now();
    let sent = 0;
    for (let done = 0; done < PUBLISHES; done += BATCH) {
      await Promise.all(
        Array.from({ length: BATCH }, (_, i) => {
          const engine = engines[i % engines.length] ?? first;
          return engine.publish(appOf(n), `c${(sent++ * 7919) % CHANNELS}`, payload);
        }),
      );
    }
    return (PUBLISHES / (performance.now() - t0)) * 1000;
  };
  const rates = new Map<number, number[]>(counts.map((n) => [n, []]));
  for (let r = 0; r < Number(opts.rounds); r++) {
    // Alternate, and rotate the order each round, so drift on the shared box hits every count.
    const order = counts.map((_, i) => counts[(i + r) % counts.length] ?? 1);
    for (const n of order) rates.get(n)?.push(await run(n));
  }
  const base = median(rates.get(counts[0] ?? 1) ?? []);
  console.log(
    `3-node cluster (${cluster.urls.length} URLs), R3, ${engines.length} publisher(s), ` +
      `${PUBLISHES} publishes per round, ${BATCH} outstanding, ${CHANNELS} channels, ` +
      `${opts.rounds} alternating rounds`,
  );
  for (const n of counts) {
    const xs = rates.get(n) ?? [];
    const m = median(xs);
    console.log(
      `streamPartitions ${String(n).padStart(2)}: median ${fmt(m, 0)} publishes/s ` +
        `(${xs.map((x) => fmt(x, 0)).join(", ")}), ${fmt(m / base, 2)}x of ${counts[0]}; ` +
        `leaders ${leaders.get(n)?.join(", ")}`,
    );
  }
  await nc.close();
} finally {
  for (const e of engines) await e.close();
  await admin.close();
}
