import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import {
  EngineUnavailableError,
  type HistoryPage,
  type HistoryQuery,
} from "../src/engine/engine.js";
import { JetStreamEngine } from "../src/engine/jetstream.js";
import { streamName } from "../src/subjects.js";
import { natsServerBinaries, startCluster, startNats } from "./nats-harness.js";
import { waitFor } from "./wait.js";

const limits = { historyPerChannel: 10_000, historyMaxAgeSec: 0, dedupeWindowSec: 60 };

/** Every page of a replay from `afterSeq`, the way the hub reads one. */
async function replay(
  engine: JetStreamEngine,
  app: string,
  channel: string,
  limit: number,
): Promise<HistoryPage[]> {
  const pages: HistoryPage[] = [];
  for (let after = 0, more = true; more; ) {
    const page = await engine.history(app, channel, { afterSeq: after, limit });
    pages.push(page);
    after = page.events.at(-1)?.seq ?? after;
    more = page.hasMore;
  }
  return pages;
}

const seqsOf = (pages: HistoryPage[]) => pages.flatMap((p) => p.events.map((e) => e.seq));

// A replay reads page after page from where the last ended, and picks up the
// consumer the last page left (js-reader.ts, Cursor): what it reads must be
// exactly what a fresh read of the same page would give, whatever happened to
// the channel in between.
describe.each(natsServerBinaries())("replay pages on one server, $label", ({ bin }) => {
  it.skipIf(!bin)(
    "read across page boundaries as fresh reads do, in a busy app, with requests per page not per event",
    async () => {
      await using nats = await startNats({ bin: bin ?? undefined });
      const engine = await JetStreamEngine.connect({ servers: nats.urls, name: "replay" });
      const fresh = await JetStreamEngine.connect({ servers: nats.urls, name: "fresh" });
      const nc = await connect({ servers: nats.urls });
      try {
        const app = "replay";
        await engine.ensureApp(app, limits);
        await fresh.ensureApp(app, limits);
        const expected: number[] = [];
        for (let i = 0; i < 600; i++) {
          await engine.publish(app, "other", { name: "o", data: i });
          expected.push((await engine.publish(app, "room", { name: "n", data: i })).seq);
        }
        const jsm = await jetstreamManager(nc);
        const before = (await jsm.getAccountInfo()).api.total;
        const pages = await replay(engine, app, "room", 100);
        const requests = (await jsm.getAccountInfo()).api.total - before - 1;
        expect(seqsOf(pages)).toEqual(expected);
        expect(pages.map((p) => p.events.length)).toEqual([100, 100, 100, 100, 100, 100]);
        expect(pages.at(-1)?.hasMore).toBe(false);
        // A create, a pull and a delete, about, per page: nowhere near one per event.
        expect(requests).toBeLessThan(40);

        // Each page the same as a fresh reader's, with events arriving between pages.
        let after = 0;
        for (let page = 0; page < 4; page++) {
          const q: HistoryQuery = { afterSeq: after, limit: 50 };
          const got = await engine.history(app, "room", q);
          expect(got).toEqual(await fresh.history(app, "room", q));
          after = got.events.at(-1)?.seq ?? after;
          expected.push(
            (await engine.publish(app, "room", { name: "n", data: `late${page}` })).seq,
          );
        }
        const rest = await engine.history(app, "room", { afterSeq: after, limit: 10_000 });
        expect(rest.events.map((e) => e.seq)).toEqual(expected.filter((s) => s > after));
        expect(rest.hasMore).toBe(false);
      } finally {
        await nc.close();
        await fresh.close();
        await engine.close();
      }
    },
  );

  it.skipIf(!bin)("report what was trimmed between pages, as a fresh read does", async () => {
    await using nats = await startNats({ bin: bin ?? undefined });
    const engine = await JetStreamEngine.connect({ servers: nats.urls, name: "trim" });
    const fresh = await JetStreamEngine.connect({ servers: nats.urls, name: "fresh" });
    try {
      const app = "trim";
      const small = { ...limits, historyPerChannel: 50 };
      await engine.ensureApp(app, small);
      await fresh.ensureApp(app, small);
      const seqs: number[] = [];
      for (let i = 0; i < 40; i++) {
        await engine.publish(app, "other", { name: "o", data: i });
        seqs.push((await engine.publish(app, "room", { name: "n", data: i })).seq);
      }
      const first = await engine.history(app, "room", { afterSeq: 0, limit: 10 });
      expect(first.events.map((e) => e.seq)).toEqual(seqs.slice(0, 10));
      // 30 more: the channel keeps its newest 50, so events 10..19, next in
      // the replay, are gone before its next page.
      for (let i = 40; i < 70; i++)
        seqs.push((await engine.publish(app, "room", { name: "n", data: i })).seq);
      const q = { afterSeq: seqs[9], limit: 10 };
      const next = await engine.history(app, "room", q);
      expect(next.events.map((e) => e.seq)).toEqual(seqs.slice(20, 30));
      expect(next.truncated).toBe(true);
      expect(next.hasMore).toBe(true);
      expect(next).toEqual(await fresh.history(app, "room", q));
    } finally {
      await fresh.close();
      await engine.close();
    }
  });
});

describe.each(natsServerBinaries())("replay pages on a 3-node cluster, $label", ({ bin }) => {
  // A page read from a consumer left on the old leader could miss what the new
  // leader holds: after a leader change the replay must read afresh.
  it.skipIf(!bin)(
    "continue across a stream leader change with exactly the leader's events",
    async () => {
      await using cluster = await startCluster(3, { bin: bin ?? undefined });
      const engine = await JetStreamEngine.connect({
        servers: cluster.urls,
        name: "stepdown",
        replicas: 3,
      });
      const nc = await connect({ servers: cluster.urls });
      try {
        const app = "stepdown";
        await engine.ensureApp(app, limits);
        const seqs: number[] = [];
        for (let i = 0; i < 120; i++) {
          await engine.publish(app, "other", { name: "o", data: i });
          seqs.push((await engine.publish(app, "room", { name: "n", data: i })).seq);
        }
        const first = await engine.history(app, "room", { afterSeq: 0, limit: 40 });
        expect(first.events.map((e) => e.seq)).toEqual(seqs.slice(0, 40));
        const stream = streamName(app);
        const leader = await cluster.streamLeader(stream);
        await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, "", { timeout: 5000 });
        await waitFor(
          async () => {
            const now = await cluster.streamLeader(stream).catch(() => leader);
            return now !== leader;
          },
          { timeoutMs: 20_000, what: "a new stream leader" },
        );
        for (let i = 120; i < 130; i++)
          seqs.push((await engine.publish(app, "room", { name: "n", data: i })).seq);
        const rest: number[] = [];
        let after = first.events.at(-1)?.seq ?? 0;
        for (let more = true; more; ) {
          // Reads may be unavailable while the new leader settles; nothing else may fail.
          const read: { page?: HistoryPage | null } = {};
          await waitFor(
            async () => {
              read.page = await engine
                .history(app, "room", { afterSeq: after, limit: 40 })
                .catch((err: unknown) => {
                  if (err instanceof EngineUnavailableError) return null;
                  throw err;
                });
              return read.page !== null;
            },
            { timeoutMs: 20_000, what: "a page from the new leader" },
          );
          const page = read.page;
          if (!page) throw new Error("no page");
          rest.push(...page.events.map((e) => e.seq));
          after = page.events.at(-1)?.seq ?? after;
          more = page.hasMore;
        }
        expect(rest).toEqual(seqs.slice(40));
      } finally {
        await nc.close();
        await engine.close();
      }
    },
  );
});
