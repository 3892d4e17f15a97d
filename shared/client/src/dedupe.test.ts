import { describe, expect, it } from "vitest";
import { DedupeWindow } from "./dedupe.js";

describe("DedupeWindow", () => {
  it("reports a repeat and remembers at most capacity ids, forgetting the oldest", () => {
    const w = new DedupeWindow(3);
    expect(["a", "b", "c"].map((id) => w.add(id))).toEqual([true, true, true]);
    expect(w.add("b")).toBe(false);
    expect(w.add("d")).toBe(true);
    expect(w.size).toBe(3);
    expect(w.has("a")).toBe(false);
    expect(["b", "c", "d"].every((id) => w.has(id))).toBe(true);
  });

  it("stays bounded under a long run of ids", () => {
    const w = new DedupeWindow(100);
    for (let i = 0; i < 10_000; i++) w.add(`e${i}`);
    expect(w.size).toBe(100);
    expect(w.has("e9999")).toBe(true);
    expect(w.has("e9899")).toBe(false);
  });

  it("forgets one id on delete and all on clear", () => {
    const w = new DedupeWindow(10);
    w.add("x");
    w.add("y");
    w.delete("x");
    expect(w.add("x")).toBe(true);
    w.clear();
    expect(w.size).toBe(0);
  });

  it("refuses a capacity below 1", () => {
    expect(() => new DedupeWindow(0)).toThrow(RangeError);
  });
});
