import { describe, expect, it } from "vitest";
import { EngineUnavailableError } from "./engine.js";
import { type CheckOptions, PositionChecks, type Positioned } from "./js-live-checks.js";

/** A channel as the scheduler sees it; a granted check passes at once. */
class FakeChannel implements Positioned {
  constructor(private readonly clock: () => number) {}
  verifiedSeq = 0;
  checkedAt: number[] = [];
  started = true;
  ended: unknown[] = [];
  checks: number[] = [];
  get checkable(): boolean {
    return this.started && this.ended.length === 0;
  }
  check(through: number): void {
    this.checks.push(through);
    this.checkedAt.push(this.clock());
    this.verifiedSeq = Math.max(this.verifiedSeq, through);
  }
  endUnverified(cause: unknown): void {
    this.ended.push(cause);
  }
}

const SWEEP_MS = 50;

/** A stream position the test moves, read through a counter; `fail` makes reads fail. */
function setup(options: Partial<CheckOptions>, n: number) {
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
  const slots = channels.map((c) => checks.add("S", c));
  /** Sweeps for `ms` of the scheduler's clock, letting each read's answer arrive. */
  const run = async (ms: number) => {
    for (const end = now + ms; now < end; ) {
      now += SWEEP_MS;
      checks.sweep(now);
      await Promise.resolve();
      await Promise.resolve();
    }
  };
  const checked = () => channels.reduce((a, c) => a + c.checks.length, 0);
  return { position, checks, channels, slots, run, checked };
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
});
