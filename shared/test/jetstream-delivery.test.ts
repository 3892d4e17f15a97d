import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineUnavailableError } from "../src/engine/engine.js";
import { JetStreamEngine } from "../src/engine/jetstream.js";
import type { Delivery } from "../src/model.js";
import { at } from "./defined.js";
import { eventsOf, lossyLiveChannel } from "./lossy-live.js";
import { type NatsHandle, startNats } from "./nats-harness.js";
import { waitFor } from "./wait.js";

const limits = { historyPerChannel: 10_000, historyMaxAgeSec: 0, dedupeWindowSec: 60 };

/** Deterministic PRNG so a failing schedule can be reproduced from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let nats: NatsHandle;
beforeAll(async () => {
  nats = await startNats({ jetstream: true });
});
afterAll(async () => {
  await nats?.stop();
});

describe("jetstream live delivery under concurrency", () => {
  // Several gateways publish into one room while subscribers come and go on
  // each of them: every subscriber must see an unbroken, ordered, duplicate-free
  // stretch of the room's history that holds everything published after `ready`.
  it("gives every subscriber a gapless suffix of history from the moment it is ready", async () => {
    const engines = await Promise.all(
      [0, 1, 2].map((i) => JetStreamEngine.connect({ servers: nats.urls, name: `prop${i}` })),
    );
    try {
      const seed = Number(process.env.TIDINGS_TEST_SEED ?? Date.now() % 100_000);
      const random = rng(seed);
      const app = `prop${seed}`;
      await at(engines, 0).ensureApp(app, limits);
      let started = 0;
      interface Sub {
        got: Delivery[];
        /** Publishes numbered at or above this started after `ready` resolved. */
        readyAt: number;
        closed: boolean;
        close: () => void;
      }
      const subs: Sub[] = [];
      const subscribeSomewhere = async () => {
        const engine = at(engines, Math.floor(random() * engines.length));
        const got: Delivery[] = [];
        const sub = engine.subscribe(app, "room", (d) => got.push(d));
        const entry: Sub = {
          got,
          readyAt: Number.POSITIVE_INFINITY,
          closed: false,
          close: () => {},
        };
        entry.close = () => {
          entry.closed = true;
          sub.close();
        };
        subs.push(entry);
        await sub.ready;
        entry.readyAt = started;
      };
      const published = new Map<number, number>(); // publish number -> seq
      const worker = async (engine: JetStreamEngine) => {
        while (started < 300) {
          const n = started++;
          // Another channel's events make the room's seqs sparse, as in production.
          if (random() < 0.3) await engine.publish(app, "other", { name: "o", data: n });
          const r = await engine.publish(app, "room", { name: "n", data: n });
          published.set(n, r.seq);
          if (random() < 0.08) await subscribeSomewhere();
          // Some subscribers leave early: an engine's last one closes its NATS subscription.
          if (random() < 0.03) subs[Math.floor(random() * subs.length)]?.close();
        }
      };
      await subscribeSomewhere();
      await Promise.all(engines.flatMap((e) => [worker(e), worker(e)]));
      const lastSeq = Math.max(...published.values());
      const order = (
        await at(engines, 0).history(app, "room", { afterSeq: 0, limit: 10_000 })
      ).events.map((e) => e.seq);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(new Set(order)).toEqual(new Set(published.values()));
      expect(subs.filter((s) => !s.closed).length).toBeGreaterThan(2);
      // Everything published after a subscriber was ready must reach it.
      const owed = (s: Sub) => [...published].filter(([n]) => n >= s.readyAt).map(([, seq]) => seq);
      await waitFor(
        () =>
          subs.every((s) => {
            if (s.closed) return true;
            const seqs = new Set(eventsOf(s.got).map((e) => e.seq));
            return owed(s).every((seq) => seqs.has(seq));
          }),
        { what: `every open subscriber's events (seed ${seed})` },
      );
      for (const s of subs) {
        const seqs = eventsOf(s.got).map((e) => e.seq);
        const first = seqs[0];
        const from = first === undefined ? 0 : order.indexOf(first);
        // Gapless, ordered, each once: exactly a stretch of history.
        expect(seqs, `seed ${seed}`).toEqual(order.slice(from, from + seqs.length));
        // Once the last publish is in, nothing stays behind.
        if (!s.closed && owed(s).length > 0) expect(seqs.at(-1), `seed ${seed}`).toBe(lastSeq);
      }
    } finally {
      await Promise.all(engines.map((e) => e.close()));
    }
  });
});

describe("jetstream gap filling when the previous event is gone", () => {
  // RePublish's Nats-Last-Sequence names the previous event on the subject; with
  // a per-channel limit of 1 that event is trimmed as soon as the next is stored,
  // so a gap fill finds nothing to read. It must deliver what follows, not stall.
  it("keeps delivering when a dropped event was already trimmed", async () => {
    const engine = await JetStreamEngine.connect({ servers: nats.urls, name: "trim" });
    const raw = await connect({ servers: nats.urls });
    try {
      const app = `trim${Date.now()}`;
      await engine.ensureApp(app, { ...limits, historyPerChannel: 1 });
      // Drop every even event live, the first one on the subject included (prev = 0).
      const { got, errors, close } = await lossyLiveChannel(raw, app, "c", (msg) => {
        const body = JSON.parse(new TextDecoder().decode(msg.data)) as { data: number };
        return body.data % 2 === 0;
      });
      const seqs: number[] = [];
      for (let i = 0; i < 10; i++) {
        seqs.push((await engine.publish(app, "c", { name: "n", data: i })).seq);
      }
      await waitFor(() => eventsOf(got).at(-1)?.seq === seqs[9], { what: "the last event" });
      const delivered = eventsOf(got).map((e) => e.seq);
      // A dropped event trimmed before the fill read it is gone for good; every
      // event that arrived live is delivered, in order, once.
      expect([...delivered].sort((a, b) => a - b)).toEqual(delivered);
      expect(new Set(delivered).size).toBe(delivered.length);
      for (let i = 1; i < 10; i += 2) expect(delivered).toContain(seqs[i]);
      close();
      expect(errors).toEqual([]);
    } finally {
      await raw.close();
      await engine.close();
    }
  });
});

describe("jetstream subscriptions made while NATS is down", () => {
  // `ready` rejects while disconnected, but the subscription stays open and
  // must start delivering once the engine is back (the reconnect resumes it).
  it("delivers once NATS is back", async () => {
    await using server = await startNats({ jetstream: true });
    const engine = await JetStreamEngine.connect({ servers: server.urls, name: "down" });
    const publisher = await JetStreamEngine.connect({ servers: server.urls, name: "downpub" });
    try {
      const app = "downapp";
      await engine.ensureApp(app, limits);
      await server.kill(0);
      await waitFor(() => !engine.isReady(), { what: "engine unready" });
      const got: Delivery[] = [];
      const sub = engine.subscribe(app, "c", (d) => got.push(d));
      await expect(sub.ready).rejects.toBeInstanceOf(EngineUnavailableError);
      await server.restart(0);
      await waitFor(() => engine.isReady() && publisher.isReady(), { what: "reconnected" });
      // When the resumed subscription becomes active is not observable: publish
      // until one event arrives, then every later one must follow in order.
      const seqs: number[] = [];
      await waitFor(
        async () => {
          seqs.push((await publisher.publish(app, "c", { name: "x", data: seqs.length })).seq);
          return eventsOf(got).length > 0;
        },
        { intervalMs: 20, what: "a first live event after the restart" },
      );
      for (let i = 0; i < 3; i++) {
        seqs.push((await publisher.publish(app, "c", { name: "x", data: seqs.length })).seq);
      }
      await waitFor(() => eventsOf(got).at(-1)?.seq === seqs.at(-1), { what: "the last event" });
      const delivered = eventsOf(got).map((e) => e.seq);
      expect(delivered).toEqual(seqs.slice(seqs.indexOf(at(delivered, 0))));
      sub.close();
    } finally {
      await engine.close();
      await publisher.close();
    }
  });
});
