import { describe, expect, it } from "vitest";
import { SmallSet } from "./small-set.js";

describe("SmallSet", () => {
  it("counts as a Set does, from one id to many", () => {
    const s = new SmallSet();
    expect(s.size).toBe(0);
    s.add("a");
    s.add("a");
    expect(s.size).toBe(1);
    expect(s.delete("b")).toBe(false);
    s.add("b");
    s.add("c");
    expect(s.size).toBe(3);
    expect(s.delete("a")).toBe(true);
    expect(s.delete("a")).toBe(false);
    expect(s.size).toBe(2);
    const t = new SmallSet();
    t.add("x");
    expect(t.delete("x")).toBe(true);
    expect(t.size).toBe(0);
  });

  it("iterates its members, objects too, and goes on after a delete during iteration", () => {
    const a = { n: 1 };
    const b = { n: 2 };
    const s = new SmallSet<{ n: number }>();
    expect([...s.values()]).toEqual([]);
    s.add(a);
    expect([...s.values()]).toEqual([a]);
    for (const m of s.values()) s.delete(m);
    expect(s.size).toBe(0);
    s.add(a);
    s.add(b);
    const seen: number[] = [];
    for (const m of s.values()) {
      seen.push(m.n);
      s.delete(a);
    }
    expect(seen).toEqual([1, 2]);
    expect([...s.values()]).toEqual([b]);
  });
});
