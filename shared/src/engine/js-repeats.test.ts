import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../model.js";
import { RepeatFilter } from "./js-repeats.js";

const ev = (seq: number, time: number): StoredEvent => ({
  channel: "c",
  seq,
  id: `evt_${seq}`,
  time,
  name: "n",
  data: seq,
});

describe("RepeatFilter", () => {
  // Within the window the stream would have deduplicated it: a second seq is the same publish.
  it("drops a later seq of an id within the duplicate window", () => {
    const f = new RepeatFilter(() => 60_000);
    expect(f.isRepeat("k:a", ev(10, 1_000))).toBe(false);
    expect(f.isRepeat("k:a", ev(12, 31_000))).toBe(true);
    // The same seq again (a fill overlapping live delivery) is not a repeat.
    expect(f.isRepeat("k:a", ev(10, 1_000))).toBe(false);
  });

  // An idempotency key reused after the window is a new event, as the stream treats it.
  it("keeps a key reused after the window, and then remembers the new seq", () => {
    const f = new RepeatFilter(() => 60_000);
    expect(f.isRepeat("k:a", ev(10, 1_000))).toBe(false);
    expect(f.isRepeat("k:a", ev(50, 61_001))).toBe(false);
    expect(f.isRepeat("k:a", ev(51, 61_002))).toBe(true);
  });

  // Until the window is known only a byte-identical retry counts, which never drops an event.
  it("with an unknown window drops only a retry with the same publish time", () => {
    const f = new RepeatFilter(() => 0);
    expect(f.isRepeat("g:x", ev(1, 5))).toBe(false);
    expect(f.isRepeat("g:x", ev(2, 5))).toBe(true);
    expect(f.isRepeat("k:y", ev(3, 5))).toBe(false);
    expect(f.isRepeat("k:y", ev(4, 6))).toBe(false);
    expect(f.isRepeat(undefined, ev(5, 5))).toBe(false);
  });

  // A busy channel must not hold the cap's worth of ids for ever.
  it("forgets ids published more than two windows and a minute before the latest event", () => {
    const f = new RepeatFilter(() => 60_000);
    for (let i = 0; i < 1_000; i++) f.isRepeat(`k:${i}`, ev(i + 1, i * 1_000));
    // Ids 819..999 (times 819 s..999 s) are within 2 x 60 s + 60 s of the last one.
    expect(f.size).toBe(181);
    // A retry of a remembered id is still dropped, even one published more
    // than a window before the latest event; one of a forgotten id is not.
    expect(f.isRepeat("k:900", ev(2_000, 900_000))).toBe(true);
    expect(f.isRepeat("k:10", ev(2_001, 10_000))).toBe(false);
  });

  it("forgets the oldest ids past its cap", () => {
    const f = new RepeatFilter(() => 60_000, 2);
    f.isRepeat("a", ev(1, 0));
    f.isRepeat("b", ev(2, 0));
    f.isRepeat("c", ev(3, 0));
    expect(f.isRepeat("a", ev(4, 0))).toBe(false);
    expect(f.isRepeat("c", ev(5, 0))).toBe(true);
  });
});
