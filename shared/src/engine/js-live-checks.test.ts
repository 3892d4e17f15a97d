import { describe, expect, it } from "vitest";
import { EngineUnavailableError } from "./engine.js";
import {
  type CheckOptions,
  type CheckSlot,
  PositionChecks,
  type Positioned,
} from "./js-live-checks.js";

/**
 * A channel as the scheduler sees it; a granted check passes at once, or
 * with `hold`, when the test calls `finish`.
 */
class FakeChannel implements Positioned {
  constructor(private readonly clock: () => number) {}
  verifiedSeq = 0;
  checkedAt: number[] = [];
  started = true;
  ended: unknown[] = [];
  reasons: (string | undefined)[] = [];
  checks: number[] = [];
  hold = false;
  slot: CheckSlot | undefined;
  private pending: number | undefined;
  get checkable(): boolean {
    return this.started && this.ended.length === 0 && this.pending === undefined;
  }
  check(through: number): void {
    this.checks.push(through);
    this.checkedAt.push(this.clock());
    this.pending = through;
    if (!this.hold) this.finish();
  }
  finish(): void {
    if (this.pending === undefined) return;
    this.verifiedSeq = Math.max(this.verifiedSeq, this.pending);
    this.pending = undefined;
    this.slot?.checkDone();
  }
  endUnverified(cause: unknown, reason?: string): void {
    this.ended.push(cause);
    this.reasons.push(reason);
  }
}

const SWEEP_MS = 50;

/**
 * A stream position the test moves (every stream's the same), read through
 * a counter; `fail` makes reads fail. Channel i is on stream i % streams.
 */
function setup(options: Partial<CheckOptions>, n: number, streams = 1) {
  const position = { lastSeq: 0, leader: "n1" as string | undefined, fail: false, reads: 0 };
  const checks = new PositionChecks(
    async () => {
      position.reads++;
      if (position.fail) throw new EngineUnavailableError("no leader");
      return { lastSeq: position.lastSeq, leader: position.leader };
    },
    () => true,
    () => {},
    { checkMs: 1000, gapMs: 3000, checkRate: 1000, ...options },
    SWEEP_MS,
  );
  let now = 0;
  const channels = Array.from({ length: n }, () => new FakeChannel(() => now));
  const slots = channels.map((c, i) => {
    c.slot = checks.add(streams === 1 ? "S" : `S${i % streams}`, c);
    return c.slot;
  });
  /** Sweeps for `ms` of the scheduler's clock, letting each read's answer arrive. */
  const run = async (ms: number, each?: () => void) => {
    for (const end = now + ms; now < end; ) {
      now += SWEEP_MS;
      checks.sweep(now);
      await Promise.resolve();
      await Promise.resolve();
      each?.();
    }
  };
  const checked = () => channels.reduce((a, c) => a + c.checks.length, 0);
  return { position, checks, channels, slots, run, checked };
}

/** The longest time a channel went without a check, from 0 to `until`. */
function longestWait(c: FakeChannel, until: number): number {
  const times = [0, ...c.checkedAt, until];
  return Math.max(...times.slice(1).map((t, i) => t - (times[i] ?? 0)));
}

describe("position checks", () => {
  // The scale run's failure: a read per channel per interval. A stream that
  // has not moved past what its channels verified costs one read per interval.
  it("reads a quiet stream once per interval and none of its channels", async () => {
    const { position, channels, run, checked } = setup({}, 1000);
    position.lastSeq = 7;
    for (const c of channels) c.verifiedSeq = 7;
    await run(10_000);
    expect(checked()).toBe(0);
    // Jittered to 0.8-1.0 of the interval: 10 to 13 reads in 10 s.
    expect(position.reads).toBeGreaterThanOrEqual(10);
    expect(position.reads).toBeLessThanOrEqual(13);
  });

  // A moved stream makes its channels due, but the reads they start stay
  // within the budget, however many channels there are; each gets its turn.
  it("checks the channels of a busy stream within the read budget, each within the bound", async () => {
    const rate = 100;
    const { position, channels, run, checked } = setup({ checkRate: rate }, 1000);
    let reads = 0;
    for (let second = 1; second <= 20; second++) {
      // Busy: the stream moves every second, so every channel is due again and again.
      position.lastSeq = second;
      await run(1000);
      const total = checked() + position.reads;
      // Plus what the bucket may hold: four sweeps' share.
      expect(total - reads).toBeLessThanOrEqual(rate + (4 * rate * SWEEP_MS) / 1000);
      reads = total;
      // Oldest due first: no channel gets a second check while another waits for its first.
    }
    // 20 s at 100 reads/s, one of them for the stream each second: each channel about twice.
    expect(checked()).toBeGreaterThan(1900);
    // Oldest due first, so the documented bound holds for each channel: a
    // check at least every checkMs + channels / rate (here 1 + 1000 / 99 s).
    const bound = 1000 + (1000 / (rate - 1)) * 1000 + 2 * SWEEP_MS;
    for (const c of channels) {
      const times = [0, ...c.checkedAt];
      const longest = Math.max(...times.slice(1).map((t, i) => t - (times[i] ?? 0)));
      expect(longest).toBeLessThanOrEqual(bound);
    }
  });

  // Channels whose live events reached the stream's last seq are verified by
  // them: no read.
  it("skips channels that delivered up to the stream's last seq", async () => {
    const { position, channels, run } = setup({}, 3);
    const [a, b, c] = channels;
    position.lastSeq = 9;
    if (!a || !b || !c) throw new Error("three channels");
    a.verifiedSeq = 9;
    b.verifiedSeq = 4;
    await run(1000);
    expect([a.checks, b.checks, c.checks]).toEqual([[], [9], [9]]);
  });

  // A new leader: its predecessor's in-flight RePublishes may be lost, and a
  // 2.9 replica may have diverged, so every channel is checked.
  it("checks every channel of a stream whose leader changed", async () => {
    const { position, channels, run, checked } = setup({}, 10);
    position.lastSeq = 3;
    for (const c of channels) c.verifiedSeq = 3;
    await run(1000);
    expect(checked()).toBe(0);
    position.leader = "n2";
    // The next read is due up to checkMs (jittered) after the last one, which
    // may have been the first run's final sweep; then the checks it queues
    // are granted a sweep later. One interval would not always contain both.
    await run(2000);
    expect(channels.every((c) => c.checks.length === 1)).toBe(true);
  });

  // Evidence of loss (a gap on one channel, a reconnect) must not wait for
  // the interval: the stream is read at the next sweep, its channels go first.
  it("reads a stream at once after a loss was seen, and puts its channels ahead", async () => {
    const { position, channels, slots, run } = setup({ checkMs: 60_000 }, 2);
    await run(SWEEP_MS);
    const reads = position.reads;
    position.lastSeq = 2;
    await run(1000);
    expect(position.reads).toBe(reads);
    slots[0]?.lossSeen();
    // One sweep reads the stream, the next grants the checks its answer made due.
    await run(2 * SWEEP_MS);
    expect(position.reads).toBe(reads + 1);
    expect(channels.map((c) => c.checks)).toEqual([[2], [2]]);
  });

  // The stream's position unreadable for the gap bound: its channels cannot
  // know what they missed, so they end (their subscribers replay).
  it("ends the started channels when the stream cannot be read for the gap bound", async () => {
    const { position, channels, run } = setup({ gapMs: 2000 }, 2);
    const [a, b] = channels;
    if (!a || !b) throw new Error("two channels");
    b.started = false;
    position.fail = true;
    await run(1900);
    expect(a.ended).toEqual([]);
    await run(400);
    expect(a.ended).toEqual([expect.any(EngineUnavailableError)]);
    expect(b.ended).toEqual([]);
  });

  // Stream reads alone can need the whole rate (here 640 streams every 5 s
  // at 100 reads/s; 10 apps x 64 partitions): they must not take it all,
  // or no channel is ever checked and a lost last event is never found.
  it("keeps half the budget for channel checks when stream reads would take it all", async () => {
    const rate = 100;
    const streams = 640;
    const checkMs = 5000;
    const { position, channels, run, checked } = setup(
      { checkMs, checkRate: rate },
      streams,
      streams,
    );
    const seconds = 120;
    let sweeps = 0;
    // Every stream moves every second: each channel is due after each read of its stream.
    await run(seconds * 1000, () => {
      if (++sweeps % (1000 / SWEEP_MS) === 0) position.lastSeq++;
    });
    expect(checked()).toBeGreaterThan(streams);
    // The documented bound: a stream read at least every max(checkMs, 2 S / rate),
    // then the channel's turn among C due channels within 2 C / rate.
    const bound = Math.max(checkMs, (2 * streams * 1000) / rate) + (2 * streams * 1000) / rate;
    for (const c of channels) expect(longestWait(c, seconds * 1000)).toBeLessThanOrEqual(bound);
  });

  // The same with a reconnect every second: every stream urgent at once.
  it("checks channels while every stream is urgent again and again", async () => {
    const { position, checks, channels, run } = setup({ checkMs: 5000, checkRate: 100 }, 640, 640);
    let sweeps = 0;
    await run(60_000, () => {
      if (++sweeps % (1000 / SWEEP_MS) === 0) {
        position.lastSeq++;
        checks.resume();
      }
    });
    expect(channels.every((c) => c.checks.length > 0)).toBe(true);
  });

  // The lowest rate: one read a second, one stream due every second.
  it("checks a channel at one read a second", async () => {
    const { position, channels, run } = setup({ checkMs: 1000, checkRate: 1 }, 1);
    let sweeps = 0;
    await run(60_000, () => {
      if (++sweeps % (1000 / SWEEP_MS) === 0) position.lastSeq++;
    });
    const [c] = channels;
    if (!c) throw new Error("one channel");
    expect(c.checks.length).toBeGreaterThan(10);
    expect(longestWait(c, 60_000)).toBeLessThanOrEqual(Math.max(1000, 2000) + 2000);
  });

  // A new leader while the channel's own check runs: that check read the
  // old leader, so the forced one follows it at once, not an interval later.
  it("checks a channel again when a forced check came while its own was running", async () => {
    const { position, channels, slots, run } = setup({ checkMs: 60_000 }, 1);
    const [c] = channels;
    if (!c) throw new Error("one channel");
    c.hold = true;
    position.lastSeq = 3;
    await run(2 * SWEEP_MS);
    expect(c.checks).toEqual([3]);
    position.leader = "n2";
    slots[0]?.lossSeen();
    await run(2 * SWEEP_MS);
    c.finish();
    await run(SWEEP_MS);
    expect(c.checks).toEqual([3, 3]);
  });

  // A stream whose last seq went back (a diverged new leader, a recreated
  // stream) will give delivered seqs to new events: its channels end.
  it("ends the channels when the stream's last seq goes back", async () => {
    const { position, channels, slots, run } = setup({}, 2);
    position.lastSeq = 100;
    await run(1000);
    expect(channels.map((c) => c.ended)).toEqual([[], []]);
    position.lastSeq = 95;
    position.leader = "n2";
    await run(1000);
    for (const c of channels) expect(c.reasons).toEqual([expect.stringContaining("went back")]);
    // Behind what a channel delivered, though not behind an earlier read.
    const other = setup({}, 1);
    other.position.lastSeq = 100;
    await other.run(1000);
    other.slots[0]?.delivered(110);
    other.position.lastSeq = 105;
    await other.run(1000);
    expect(other.channels[0]?.reasons).toEqual([expect.stringContaining("went back")]);
    expect(slots).toHaveLength(2);
  });

  // Slots moved between the queues, or removed, leave stale entries; under
  // sustained urgency they must not pile up.
  it("keeps the check queues bounded by the channels under sustained urgency", async () => {
    const n = 10;
    const { position, checks, slots, run } = setup({ checkMs: 100, checkRate: 4 }, n);
    // Every other stream read is urgent: the one between queues what was
    // checked to the normal queue, the urgent one moves it to the urgent
    // queue, and the urgent queue never empties, so the normal one is not popped.
    let flagged = 0;
    let most = 0;
    await run(1_800_000, () => {
      position.lastSeq++;
      if (position.reads % 2 === 1 && position.reads !== flagged) {
        flagged = position.reads;
        slots[0]?.lossSeen();
      }
      most = Math.max(most, checks.queued());
    });
    // Without a bound, ~1,800 entries after these 30 minutes, growing.
    expect(most).toBeLessThanOrEqual(2 * (2 * n + 64) + 2);
    for (const s of slots) s.remove();
    await run(SWEEP_MS);
    expect(checks.queued()).toBe(0);
  });
});
