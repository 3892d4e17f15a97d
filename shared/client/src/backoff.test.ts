import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff.js";

describe("backoffDelay", () => {
  const opts = { baseMs: 100, maxMs: 1000 };

  it("doubles the ceiling each attempt and caps it", () => {
    const top = (attempt: number) => backoffDelay(attempt, opts, () => 0.999999);
    expect([0, 1, 2, 3, 4, 5, 10, 60].map(top)).toEqual([99, 199, 399, 799, 999, 999, 999, 999]);
  });

  it("is full jitter: anywhere from 0 up to the ceiling", () => {
    expect(backoffDelay(3, opts, () => 0)).toBe(0);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(400);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(backoffDelay(2, opts));
    for (const d of seen) expect(d >= 0 && d < 400).toBe(true);
    // Real randomness spreads clients out rather than sending them back together.
    expect(seen.size).toBeGreaterThan(50);
  });

  it("stays finite for huge attempt numbers", () => {
    expect(backoffDelay(10_000, opts, () => 0.5)).toBe(500);
  });
});
