/**
 * What a position check's request costs the gateway's process (not a test):
 * `--reqs` STREAM.MSG.GET last_by_subj requests, `--inflight` at a time,
 * through nats.js's `nc.request` and through the engine's `Requests`
 * (shared/src/nats/requests.ts), alternating for `--rounds`; prints this
 * process's CPU µs per request (user + system) and requests/s for each, on a
 * single-node nats-server from the test harness.
 *
 *   npx tsx loadtest/nats-requests.ts [--reqs 20000] [--inflight 100] [--rounds 3]
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { LINK_OPTIONS } from "../shared/src/nats/link.js";
import { Requests } from "../shared/src/nats/requests.js";
import { startNats } from "../shared/test/nats-harness.js";
import { benchOptions, fmt, median } from "./bench-kit.js";

const opts = benchOptions({ reqs: "20000", inflight: "100", rounds: "3" });
const REQS = Number(opts.reqs);
const INFLIGHT = Number(opts.inflight);
const ROUNDS = Number(opts.rounds);

const nats = await startNats();
const nc = await connect({ servers: nats.url(0), ...LINK_OPTIONS });
try {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "BENCH", subjects: ["bench.>"] });
  const js = jsm.jetstream();
  for (let i = 0; i < 100; i++) await js.publish(`bench.c${i}`, "x");
  const requests = new Requests(nc, 5000);
  const subject = "$JS.API.STREAM.MSG.GET.BENCH";
  const body = (i: number) => JSON.stringify({ last_by_subj: `bench.c${i % 100}` });
  const ways = {
    "nc.request": (i: number) => nc.request(subject, body(i), { timeout: 5000 }),
    Requests: (i: number) => requests.request(subject, body(i)),
  };
  const results: Record<string, { cpu: number[]; rate: number[] }> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.entries(ways);
    if (round % 2 === 1) order.reverse();
    for (const [name, send] of order) {
      let next = 0;
      const worker = async () => {
        while (next < REQS) {
          const r = await send(next++);
          if (r.data.length === 0) throw new Error("empty reply");
        }
      };
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: INFLIGHT }, worker));
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const entry = results[name] ?? { cpu: [], rate: [] };
      results[name] = entry;
      entry.cpu.push((cpu.user + cpu.system) / REQS);
      entry.rate.push(REQS / (ms / 1000));
      console.log(
        `round ${round + 1} ${name.padEnd(11)} ${fmt((cpu.user + cpu.system) / REQS, 2)} µs CPU/req, ${fmt(REQS / (ms / 1000), 0)} req/s`,
      );
    }
  }
  console.log("\nmedians:");
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `  ${name.padEnd(11)} ${fmt(median(r.cpu), 2)} µs CPU/req, ${fmt(median(r.rate), 0)} req/s`,
    );
  }
} finally {
  await nc.close();
  await nats.stop();
}
