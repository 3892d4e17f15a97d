import { jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeliveryGap } from "../src/engine/engine.js";
import { JetStreamEngine } from "../src/engine/jetstream.js";
import { LiveHub, type LiveOptions } from "../src/engine/js-live.js";
import { StreamReader } from "../src/engine/js-reader.js";
import type { Delivery } from "../src/model.js";
import { channelStream, streamName } from "../src/subjects.js";
import { lossyConnection } from "./lossy-live.js";
import { type NatsHandle, startNats } from "./nats-harness.js";
import { waitFor } from "./wait.js";

const limits = { historyPerChannel: 100, historyMaxAgeSec: 0, dedupeWindowSec: 60 };
const INFO = "$JS.API.STREAM.INFO.";
const GET = "$JS.API.STREAM.MSG.GET.";

let nats: NatsHandle;
let engine: JetStreamEngine;
beforeAll(async () => {
  nats = await startNats({ jetstream: true });
  engine = await JetStreamEngine.connect({ servers: nats.urls, name: "checks" });
});
afterAll(async () => {
  await engine?.close();
  await nats?.stop();
});

/** A connection that logs the subject of every request the reader sends, in order. */
function requestLog(nc: NatsConnection): { nc: NatsConnection; sent: string[] } {
  const sent: string[] = [];
  const logged = new Proxy(nc, {
    get(target, prop) {
      if (prop === "publish") {
        return (
          subject: string,
          ...rest: Parameters<NatsConnection["publish"]> extends [string, ...infer R] ? R : never
        ) => {
          sent.push(subject);
          return target.publish(subject, ...rest);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { nc: logged, sent };
}

/**
 * One engine's live fan-out for many channels of an app: live messages go
 * through `drop`, the reader's requests are logged.
 */
async function liveChannels(
  raw: NatsConnection,
  app: string,
  channels: string[],
  live: Partial<LiveOptions>,
  drop: (msg: Msg) => boolean = () => false,
) {
  const { nc, sent } = requestLog(raw);
  const reader = new StreamReader(nc, await jetstreamManager(raw, { timeout: 1000 }), 1000);
  const errors: unknown[] = [];
  const hub = new LiveHub(
    lossyConnection(raw, drop),
    reader,
    () => true,
    errors.push.bind(errors),
    live,
  );
  const got = new Map<string, Delivery[]>(channels.map((c) => [c, []]));
  const gaps: DeliveryGap[] = [];
  const subs = channels.map((channel) =>
    hub.subscribe(
      channel,
      channelStream(app, channel),
      (d) => got.get(channel)?.push(d),
      (gap) => gaps.push(gap),
    ),
  );
  await Promise.all(subs.map((s) => s.ready));
  return {
    hub,
    sent,
    got,
    gaps,
    errors,
    close: () => {
      for (const s of subs) s.close();
      hub.close();
    },
  };
}

/** Requests with `prefix` sent between the `from`-th and the `to`-th stream read (1-based). */
function between(sent: string[], prefix: string, from: number, to: number): number {
  let reads = 0;
  let n = 0;
  for (const s of sent) {
    if (s.startsWith(INFO)) reads++;
    else if (reads >= from && reads < to && s.startsWith(prefix)) n++;
  }
  return n;
}

/** Runs `body` on a connection of its own and a fresh app named from `prefix`, closing the connection after. */
async function withApp(
  prefix: string,
  body: (raw: NatsConnection, app: string) => Promise<void>,
): Promise<void> {
  const raw = await connect({ servers: nats.urls });
  try {
    const app = `${prefix}${Date.now()}`;
    await engine.ensureApp(app, limits);
    await body(raw, app);
  } finally {
    await raw.close();
  }
}

const streamReads = (sent: string[]) => sent.filter((s) => s.startsWith(INFO)).length;

describe("live position checks per stream", () => {
  // The scale run's reconnect storm came from one read per channel per
  // interval. On a stream that does not move, an interval costs one read of
  // the stream, whatever the number of channels.
  it("reads a quiet stream once per interval, not each of its channels", async () => {
    await withApp("quietmany", async (raw, app) => {
      await engine.publish(app, "elsewhere", { name: "n", data: 1 });
      const channels = Array.from({ length: 200 }, (_, i) => `c${i}`);
      const live = await liveChannels(raw, app, channels, { checkMs: 100, checkRate: 100_000 });
      const start = live.sent.length;
      await waitFor(() => streamReads(live.sent) >= 12, { what: "twelve stream reads" });
      live.close();
      const after = live.sent.slice(start);
      // Channels started before the first stream read each check once: the
      // stream's last seq is past their start (the event on "elsewhere").
      expect(between(after, GET, 1, 13)).toBeLessThanOrEqual(channels.length);
      // From then on nothing: one per channel per interval would be 2,000 here.
      // (A read that times out on a loaded box is retried, hence the margin.)
      expect(between(after, GET, 3, 13)).toBeLessThanOrEqual(5);
      expect(live.errors).toEqual([]);
    });
  });

  // The budget must not cost the guarantee: a lost last event on one of
  // many channels of a busy stream is still found, by its channel's turn.
  it("finds a lost last event among many channels of a busy stream, within the budget", async () => {
    await withApp("busymany", async (raw, app) => {
      const channels = Array.from({ length: 100 }, (_, i) => `c${i}`);
      const victim = "c57";
      const rate = 40;
      const checkMs = 100;
      const live = await liveChannels(raw, app, channels, { checkMs, checkRate: rate }, (msg) =>
        msg.subject.endsWith(`.${victim}`),
      );
      const start = live.sent.length;
      // Another channel keeps the stream moving: every channel stays due.
      let busy = true;
      const mover = (async () => {
        while (busy) await engine.publish(app, "mover", { name: "m", data: 0 });
      })();
      const { seq } = await engine.publish(app, victim, { name: "lost", data: 1 });
      const events = () =>
        (live.got.get(victim) ?? []).flatMap((d) => (d.type === "event" ? [d.event.seq] : []));
      await waitFor(() => events().length > 0, { timeoutMs: 20_000, what: "the lost event" });
      busy = false;
      await mover;
      live.close();
      expect(events()).toEqual([seq]);
      expect(live.gaps).toEqual([]);
      expect(live.errors).toEqual([]);
      // Per interval, at most the budget's share (an interval can stretch by a
      // slow answer, up to the read timeout) plus what the bucket holds (four
      // sweeps of 50 ms): never all 100 channels.
      const sent = live.sent.slice(start);
      const intervals = streamReads(sent);
      const sweepMs = 50;
      const share =
        Math.ceil((rate * (checkMs + 1000 + sweepMs)) / 1000) + (rate * 4 * sweepMs) / 1000 + 1;
      for (let k = 1; k < intervals; k++) {
        expect(between(sent, GET, k, k + 1)).toBeLessThanOrEqual(share);
      }
    });
  });

  // A stream that went back (here recreated; on 2.9 a new leader that
  // diverged) numbers new events with seqs the channel counts as delivered:
  // they would be dropped as repeats, so the channel ends and its
  // subscribers replay.
  it("ends a channel whose stream went back behind what it delivered", async () => {
    await withApp("wentback", async (raw, app) => {
      const live = await liveChannels(raw, app, ["victim"], { checkMs: 100 });
      for (let i = 0; i < 5; i++) await engine.publish(app, "victim", { name: "e", data: i });
      const events = () => (live.got.get("victim") ?? []).filter((d) => d.type === "event");
      await waitFor(() => events().length === 5, { what: "five live events" });
      const jsm = await jetstreamManager(raw);
      await jsm.streams.delete(streamName(app));
      await engine.ensureApp(app, limits);
      // Seq 1 on the channel, then the stream past where it was: its last
      // seq did not go back, the channel's did.
      await engine.publish(app, "victim", { name: "new", data: 0 });
      for (let i = 0; i < 10; i++) await engine.publish(app, "other", { name: "o", data: i });
      await waitFor(() => live.gaps.length > 0, { what: "the channel ended" });
      live.close();
      expect(live.gaps).toEqual([
        expect.objectContaining({ afterSeq: 5, reason: expect.stringContaining("went back") }),
      ]);
      expect(events()).toHaveLength(5);
    });
  });
});

/** Drops the next live message of the channel "noise" once armed: one gap on the feed. */
function oneLostNoise() {
  let armed = false;
  return {
    arm: () => {
      armed = true;
    },
    drop: (msg: Msg) => {
      if (!armed || !msg.subject.endsWith(".noise")) return false;
      armed = false;
      return true;
    },
  };
}

// js-feed-cursor.ts: per app, the feed itself tells how far each stream got.
describe("the app feed's cursor", () => {
  const gets = (sent: string[]) => sent.filter((s) => s.startsWith(GET)).length;
  const seqsOf = (got: Delivery[] | undefined) =>
    (got ?? []).flatMap((d) => (d.type === "event" ? [d.event.seq] : []));

  // A connect storm's channels start from one read of the stream, not one each.
  it("starts channels and joins them without reading their positions, and delivers what follows", async () => {
    await withApp("cursorstart", async (raw, app) => {
      const channels = Array.from({ length: 200 }, (_, i) => `c${i}`);
      // History before the subscribe: none of it is delivered live.
      for (const c of channels.slice(0, 10)) await engine.publish(app, c, { name: "old", data: 0 });
      const live = await liveChannels(raw, app, channels, { checkMs: 100, checkRate: 1000 });
      expect(gets(live.sent)).toBe(0);
      expect(streamReads(live.sent)).toBeLessThanOrEqual(2);
      const seqs = new Map<string, number>();
      for (const c of channels.slice(0, 20)) {
        seqs.set(c, (await engine.publish(app, c, { name: "new", data: 1 })).seq);
      }
      await waitFor(() => channels.slice(0, 20).every((c) => seqsOf(live.got.get(c)).length > 0), {
        what: "the new events",
      });
      // A quiet moment: any check still wanted would show now.
      await new Promise((r) => setTimeout(r, 300));
      for (const c of channels) {
        expect(seqsOf(live.got.get(c))).toEqual(seqs.has(c) ? [seqs.get(c)] : []);
      }
      // A second subscriber joins a channel the hub follows.
      const joined: Delivery[] = [];
      const join = live.hub.subscribe("c0", channelStream(app, "c0"), (d) => joined.push(d));
      expect(await join.ready).toBeGreaterThanOrEqual(seqs.get("c0") ?? Number.NaN);
      const next = await engine.publish(app, "c0", { name: "next", data: 2 });
      await waitFor(() => seqsOf(joined).length > 0, { what: "the joiner's event" });
      expect(seqsOf(joined)).toEqual([next.seq]);
      join.close();
      expect(gets(live.sent)).toBe(0);
      expect(live.errors).toEqual([]);
      live.close();
    });
  });

  // Per channel, a stream that moves made each of its channels due for a read.
  it("keeps quiet channels of a busy stream from their own position checks", async () => {
    await withApp("cursorbusy", async (raw, app) => {
      const channels = Array.from({ length: 100 }, (_, i) => `q${i}`);
      const live = await liveChannels(raw, app, channels, { checkMs: 100, checkRate: 1000 });
      const start = live.sent.length;
      for (let i = 0; i < 200; i++) await engine.publish(app, "mover", { name: "m", data: i });
      await waitFor(() => streamReads(live.sent.slice(start)) >= 5, { what: "five stream reads" });
      live.close();
      // Without the cursor: every channel, every interval the stream moved in.
      expect(gets(live.sent.slice(start))).toBe(0);
      expect(live.errors).toEqual([]);
    });
  });

  // A channel that starts after its newest event was lost on the feed goes
  // live below it (the cursor never saw it), so that event is the
  // channel's to deliver: its position check finds it.
  it("delivers an event lost on the feed before its channel started", async () => {
    await withApp("cursorlost", async (raw, app) => {
      let drop = true;
      const live = await liveChannels(
        raw,
        app,
        ["holder"],
        { checkMs: 100 },
        (msg) => drop && msg.subject.endsWith(".victim"),
      );
      const { seq } = await engine.publish(app, "victim", { name: "lost", data: 1 });
      await waitFor(() => streamReads(live.sent) >= 2, { what: "a stream read after it" });
      drop = false;
      const got: Delivery[] = [];
      const sub = live.hub.subscribe(
        "victim",
        channelStream(app, "victim"),
        (d) => got.push(d),
        (gap) => live.gaps.push(gap),
      );
      expect(await sub.ready).toBeLessThan(seq);
      await waitFor(() => seqsOf(got).length > 0, { what: "the lost event" });
      const next = await engine.publish(app, "victim", { name: "next", data: 2 });
      await waitFor(() => seqsOf(got).length > 1, { what: "the next event" });
      expect(seqsOf(got)).toEqual([seq, next.seq]);
      expect(gets(live.sent)).toBeGreaterThan(0);
      expect(live.gaps).toEqual([]);
      expect(live.errors).toEqual([]);
      sub.close();
      live.close();
    });
  });

  // A gap ends the cursor's run and one read anchors the next: nothing is
  // lost or repeated, and a channel started after reads nothing of its own.
  it("anchors again after a gap on the feed, losing nothing", async () => {
    await withApp("cursorgap", async (raw, app) => {
      const noise = oneLostNoise();
      const live = await liveChannels(raw, app, ["a"], { checkMs: 100 }, noise.drop);
      const anchors = () => live.hub.positionReads().anchor;
      expect(anchors()).toBe(1);
      const seqs: number[] = [];
      for (let i = 0; i < 5; i++) {
        if (i === 2) noise.arm();
        await engine.publish(app, "noise", { name: "n", data: i });
        seqs.push((await engine.publish(app, "a", { name: "e", data: i })).seq);
      }
      await waitFor(() => seqsOf(live.got.get("a")).length === 5, { what: "five events on a" });
      expect(seqsOf(live.got.get("a"))).toEqual(seqs);
      await waitFor(() => anchors() >= 2, { what: "a second anchoring read" });
      // Anchored again: a channel started now reads nothing of its own.
      const before = live.hub.positionReads().start;
      const b: Delivery[] = [];
      const sub = live.hub.subscribe("b", channelStream(app, "b"), (d) => b.push(d));
      await sub.ready;
      expect(live.hub.positionReads().start).toBe(before);
      const { seq } = await engine.publish(app, "b", { name: "e", data: 0 });
      await waitFor(() => seqsOf(b).length === 1, { what: "b's event" });
      expect(seqsOf(b)).toEqual([seq]);
      expect(live.gaps).toEqual([]);
      expect(live.errors).toEqual([]);
      sub.close();
      live.close();
    });
  });

  // Started from the cursor, a channel goes live at a position of the
  // stream, past its own last event: when the cursor breaks and the channel
  // checks itself, that last event is not a stream gone back.
  it("does not take a channel started from the cursor for one gone back when the cursor breaks", async () => {
    await withApp("cursorbreak", async (raw, app) => {
      await engine.publish(app, "q", { name: "old", data: 0 });
      for (let i = 0; i < 3; i++) await engine.publish(app, "noise", { name: "n", data: i });
      const noise = oneLostNoise();
      const live = await liveChannels(raw, app, ["holder"], { checkMs: 100 }, noise.drop);
      const got: Delivery[] = [];
      const sub = live.hub.subscribe(
        "q",
        channelStream(app, "q"),
        (d) => got.push(d),
        (gap) => live.gaps.push(gap),
      );
      await sub.ready;
      expect(gets(live.sent)).toBe(0);
      // One lost message breaks the run, and a reconnect would too.
      noise.arm();
      await engine.publish(app, "noise", { name: "n", data: 3 });
      await engine.publish(app, "noise", { name: "n", data: 4 });
      live.hub.resume();
      // q is no longer the cursor's: the stream moved past it, so it checks itself.
      await waitFor(() => gets(live.sent) >= 2, { what: "q's and holder's own checks" });
      const next = await engine.publish(app, "q", { name: "next", data: 1 });
      await waitFor(() => seqsOf(got).length > 0, { what: "q's next event" });
      expect(seqsOf(got)).toEqual([next.seq]);
      expect(live.gaps).toEqual([]);
      expect(live.errors).toEqual([]);
      sub.close();
      live.close();
    });
  });
});
