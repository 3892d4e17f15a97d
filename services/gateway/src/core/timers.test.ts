import { afterEach, expect, it, vi } from "vitest";
import { runAt } from "./timers.js";

afterEach(() => {
  vi.useRealTimers();
});

it("runs at the given time, stepping past setTimeout's ~24.8-day range", () => {
  vi.useFakeTimers({ now: 0 });
  const fired: number[] = [];
  runAt(40 * 86_400_000, () => fired.push(Date.now()));
  vi.advanceTimersByTime(25 * 86_400_000);
  expect(fired).toEqual([]);
  vi.advanceTimersByTime(15 * 86_400_000);
  expect(fired).toEqual([40 * 86_400_000]);
});

it("runs a time already past on the next turn, and can be cancelled", () => {
  vi.useFakeTimers({ now: 1000 });
  const fired: string[] = [];
  runAt(0, () => fired.push("past"));
  const cancel = runAt(5000, () => fired.push("cancelled"));
  cancel();
  vi.advanceTimersByTime(10_000);
  expect(fired).toEqual(["past"]);
});
