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
});
