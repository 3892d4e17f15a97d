import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { JetStreamEngine } from "../src/engine/jetstream.js";
import { ackSeqs } from "../src/engine/js-pull.js";
import { StreamReader } from "../src/engine/js-reader.js";
import { eventSubject, streamName } from "../src/subjects.js";
import { droppingConnection } from "./lossy-live.js";
import { natsServerBinaries, startNats } from "./nats-harness.js";

const limits = { historyPerChannel: 10_000, historyMaxAgeSec: 0, dedupeWindowSec: 60 };

/**
 * A connection that loses the history delivery of each stream seq in
 * `drops`, once: a pull's messages are core messages, which a slow
 * consumer or a reconnect can lose while the pull's status still arrives.
 */
function losingDeliveries(nc: NatsConnection, drops: Set<number>): NatsConnection {
  return droppingConnection(nc, (_subject, msg) => {
    const seq = msg.reply ? ackSeqs(msg.reply)?.seq : undefined;
    return seq !== undefined && drops.delete(seq);
  });
}

// A page that lost a delivery must not read as shorter history: the hub
// would end the replay there and go live past the missing events.
describe.each(natsServerBinaries())("history pages that lose a delivery, $label", ({ bin }) => {
  it.skipIf(!bin)(
    "are read again, on a fresh pull, the first page, a parked consumer's first and last message alike",
    async () => {
      await using nats = await startNats({ bin: bin ?? undefined });
      const engine = await JetStreamEngine.connect({ servers: nats.urls, name: "lossy-pulls" });
      const nc = await connect({ servers: nats.urls });
      try {
        const app = "lossy";
        await engine.ensureApp(app, limits);
        const seqs: number[] = [];
        for (let i = 0; i < 40; i++) {
          await engine.publish(app, "other", { name: "o", data: i });
          seqs.push((await engine.publish(app, "room", { name: "n", data: i })).seq);
        }
        const at = (i: number) => seqs[i] ?? 0;
        const stream = streamName(app);
        const subject = eventSubject(app, "room");
        const jsm = await jetstreamManager(nc, { timeout: 2000 });
        // Page one: a fresh consumer's full batch, missing its 5th message.
        // Page two: the parked consumer's next batch, missing its first.
        // Page three: the parked consumer's pull asks for more than it holds,
        // so the server ends it with a 404 (or 408); its last message is lost.
        const drops = new Set([at(4), at(10), at(39)]);
        const reader = new StreamReader(losingDeliveries(nc, drops), jsm, 2000);
        try {
          const pages = [];
          for (const [from, max] of [
            [1, 10],
            [at(9) + 1, 10],
            [at(19) + 1, 100],
          ] as const) {
            const page = await reader.readRange(stream, subject, from, max);
            pages.push({ seqs: page.msgs.map((m) => m.seq), more: page.more });
          }
          expect(pages).toEqual([
            { seqs: seqs.slice(0, 10), more: true },
            { seqs: seqs.slice(10, 20), more: true },
            { seqs: seqs.slice(20), more: false },
          ]);
          expect(drops.size).toBe(0);
        } finally {
          reader.close();
        }
      } finally {
        await nc.close();
        await engine.close();
      }
    },
  );
});
