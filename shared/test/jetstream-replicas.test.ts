import { jetstreamManager } from "@nats-io/jetstream";
import { headers, nanos } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { JetStreamEngine } from "../src/engine/jetstream.js";
import { encodeEventBody } from "../src/engine/js-codec.js";
import type { Delivery, Json } from "../src/model.js";
import { eventSubject, streamName } from "../src/subjects.js";
import { eventsOf, lossyLiveChannel } from "./lossy-live.js";
import { natsServerBinaries, startCluster, startNats } from "./nats-harness.js";
import { waitFor } from "./wait.js";

const limits = { historyPerChannel: 10_000, historyMaxAgeSec: 0, dedupeWindowSec: 60 };
// Bulk on another channel: the paused follower has more to catch up on, for longer.
const filler = "f".repeat(4000);
const ROOMS = ["room0", "room1", "room2", "room3", "room4", "room5"];

type Expected = { seq: number; data: Json }[];
const pairs = (events: { seq: number; data: Json }[]): Expected =>
  events.map((e) => ({ seq: e.seq, data: e.data }));

describe.each(natsServerBinaries())("reads on a 3-node cluster, $label", ({ bin }) => {
  // A follower that was paused (or restarted) is behind the leader for a while, and an
  // ephemeral consumer lands on a random replica: history, replay and gap fills served
  // from it would silently miss events. Every read must be exactly what the leader holds.
  it.skipIf(!bin)(
    "serves history, replay and gap fills as the stream leader holds them while a follower catches up",
    async () => {
      await using cluster = await startCluster(3, { bin: bin ?? undefined });
      const app = `lag${Date.now()}`;
      const stream = streamName(app);
      const admin = await JetStreamEngine.connect({
        servers: cluster.urls,
        name: "admin",
        replicas: 3,
      });
      await admin.ensureApp(app, limits);
      const leader = await cluster.streamLeader(stream);
      // Not the meta leader either: consumer creates need one, and pausing it makes them fail.
      const meta = await cluster.metaLeader();
      const follower = [0, 1, 2].find((i) => i !== leader && i !== meta) ?? (leader + 1) % 3;
      await admin.close();
      // Nothing below talks to the follower directly: it is paused, and a client on it would hang.
      const servers = cluster.urls.filter((_, i) => i !== follower);
      const engine = await JetStreamEngine.connect({ servers, name: "reads", replicas: 3 });
      const raw = await connect({ servers });
      try {
        await engine.ensureApp(app, limits);
        const expected = new Map<string, Expected>(ROOMS.map((r) => [r, []]));
        let n = 0;
        const publish = async (perRoom: number) => {
          for (let i = 0; i < perRoom; i++) {
            await Promise.all(
              ROOMS.map(async (room) => {
                const data = n++;
                // Another channel's events make every room's seqs sparse, as in production.
                await engine.publish(app, "other", { name: "o", data: filler });
                const { seq } = await engine.publish(app, room, { name: "n", data });
                expected.get(room)?.push({ seq, data });
              }),
            );
          }
        };
        let dropping = false;
        const lives = await Promise.all(
          ROOMS.map((room) => lossyLiveChannel(raw, app, room, () => dropping)),
        );
        await publish(50);
        cluster.pause(follower);
        // Dropped live while the follower is frozen: each room's next event makes it fill them.
        dropping = true;
        await publish(100);
        dropping = false;
        const leaderLast = await cluster.replicaLastSeq(leader, stream);
        cluster.resume(follower);
        await publish(1);

        let reads = 0;
        const readAll = async () => {
          await Promise.all(
            ROOMS.map(async (room) => {
              const want = expected.get(room) ?? [];
              const [replay, newest, page] = await Promise.all([
                engine.history(app, room, { afterSeq: 0, limit: 10_000 }),
                engine.history(app, room, { limit: 10_000 }),
                engine.history(app, room, { afterSeq: want[120]?.seq ?? 0, limit: 20 }),
              ]);
              expect(pairs(replay.events)).toEqual(want);
              expect(replay.hasMore).toBe(false);
              expect(pairs(newest.events)).toEqual(want);
              expect(pairs(page.events)).toEqual(want.slice(121, 141));
              expect(page.hasMore).toBe(true);
              reads += 3;
            }),
          );
        };
        // Reads race the follower's catch-up; keep reading until it has caught up.
        await waitFor(
          async () => {
            await readAll();
            const seen = await cluster.replicaLastSeq(follower, stream);
            return reads >= 90 && seen !== null && leaderLast !== null && seen >= leaderLast;
          },
          { timeoutMs: 30_000, intervalMs: 0, what: "the follower to catch up" },
        );
        await readAll();

        for (const [i, room] of ROOMS.entries()) {
          const live = lives[i];
          const want = expected.get(room) ?? [];
          if (!live) throw new Error("no live channel");
          await waitFor(() => eventsOf(live.got).length >= want.length, {
            what: `every ${room} event live`,
          });
          // Counted one by one: every event once, in order, with the leader's seq.
          expect(pairs(eventsOf(live.got))).toEqual(want);
          live.close();
          expect(live.errors).toEqual([]);
        }
      } finally {
        await raw.close();
        await engine.close();
      }
    },
  );
});

describe("a publish stored under two seqs", () => {
  // A 2.9 replica that reset its cluster state can lose a stored message or its dedupe
  // entry, and the publisher's retry (same Nats-Msg-Id) is then stored again under a new
  // seq. Here the stream forgets the id because its window is made tiny behind the
  // engine's back. Event ids come from seqs: readers must see that publish once.
  it("is delivered live and read back once, under its first seq", async () => {
    await using server = await startNats({ jetstream: true });
    const engine = await JetStreamEngine.connect({ servers: server.urls, name: "twice" });
    const raw = await connect({ servers: server.urls });
    try {
      const app = `twice${Date.now()}`;
      await engine.ensureApp(app, limits);
      const jsm = await jetstreamManager(raw);
      const info = await jsm.streams.info(streamName(app));
      await jsm.streams.update(streamName(app), { ...info.config, duplicate_window: nanos(100) });
      const got: Delivery[] = [];
      const sub = engine.subscribe(app, "c", (d) => got.push(d));
      await sub.ready;

      const first = await engine.publish(app, "c", { name: "n", data: "before" });
      // The pipelined publisher's retry resends the very same bytes under the same id.
      const body = encodeEventBody({ name: "n", data: "retried" }, Date.now());
      const store = async (msgId: string, bytes: Uint8Array) => {
        const h = headers();
        h.set("Nats-Msg-Id", msgId);
        const ack = (
          await raw.request(eventSubject(app, "c"), bytes, { headers: h, timeout: 5000 })
        ).json<{
          seq: number;
          duplicate?: boolean;
        }>();
        return ack;
      };
      const once = await store("g:retried-publish", body);
      // A client's retry through engine.publish with the same key has a new body time.
      const keyed = await engine.publish(
        app,
        "c",
        { name: "n", data: "keyed" },
        { idempotencyKey: "K" },
      );
      const stored: number[] = [];
      await waitFor(
        async () => {
          const again = await store("g:retried-publish", body);
          if (!again.duplicate) stored.push(again.seq);
          return stored.length > 0;
        },
        { intervalMs: 20, what: "the stream to forget the id and store it again" },
      );
      await waitFor(
        async () => {
          const r = await engine.publish(
            app,
            "c",
            { name: "n", data: "keyed" },
            { idempotencyKey: "K" },
          );
          return !r.duplicate;
        },
        { intervalMs: 20, what: "the stream to forget the key and store it again" },
      );
      // Back to the window the engine configured: what a diverged replica would report.
      await jsm.streams.update(streamName(app), info.config);
      const last = await engine.publish(app, "c", { name: "n", data: "after" });
      const want = [
        { seq: first.seq, data: "before" },
        { seq: once.seq, data: "retried" },
        { seq: keyed.seq, data: "keyed" },
        { seq: last.seq, data: "after" },
      ];

      await waitFor(() => eventsOf(got).at(-1)?.seq === last.seq, { what: "the last event live" });
      expect(pairs(eventsOf(got))).toEqual(want);
      const replay = await engine.history(app, "c", { afterSeq: 0, limit: 100 });
      expect(pairs(replay.events)).toEqual(want);
      const newest = await engine.history(app, "c", { limit: 100 });
      expect(pairs(newest.events)).toEqual(want);
      sub.close();
    } finally {
      await raw.close();
      await engine.close();
    }
  });

  // The pipelined publisher resends under the same id for up to 15 s (an election takes
  // ~5-6 s); a dedupe window shorter than that would store a late retry a second time.
  it("keeps the stream's dedupe window at least as long as the publisher retries", async () => {
    await using server = await startNats({ jetstream: true });
    const engine = await JetStreamEngine.connect({ servers: server.urls, name: "window" });
    const raw = await connect({ servers: server.urls });
    try {
      const app = `window${Date.now()}`;
      await engine.ensureApp(app, { ...limits, dedupeWindowSec: 1 });
      const info = await (await jetstreamManager(raw)).streams.info(streamName(app));
      expect(info.config.duplicate_window).toBeGreaterThanOrEqual(nanos(15_000));
    } finally {
      await raw.close();
      await engine.close();
    }
  });
});
