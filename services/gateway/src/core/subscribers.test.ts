import { describe, expect, it } from "vitest";
import { Subscribers } from "./subscribers.js";

describe("Subscribers", () => {
  it("acts as a Map from one entry to many and back", () => {
    const s = new Subscribers<string>();
    expect(s.size).toBe(0);
    expect([...s.values()]).toEqual([]);
    s.set("a", "A");
    s.set("a", "A2");
    expect(s.size).toBe(1);
    expect(s.get("a")).toBe("A2");
    expect(s.get("b")).toBeUndefined();
    s.set("b", "B");
    s.set("c", "C");
    expect(s.size).toBe(3);
    expect([...s.values()]).toEqual(["A2", "B", "C"]);
    expect(s.delete("b")).toBe(true);
    expect(s.delete("b")).toBe(false);
    expect([...s.values()]).toEqual(["A2", "C"]);
    s.clear();
    expect(s.size).toBe(0);
    expect(s.delete("a")).toBe(false);
  });

  it("keeps iterating as a Map does when the entry at hand is deleted", () => {
    const s = new Subscribers<string>();
    for (const id of ["a", "b", "c"]) s.set(id, id);
    const seen: string[] = [];
    for (const v of s.values()) {
      seen.push(v);
      s.delete(v);
    }
    expect(seen).toEqual(["a", "b", "c"]);
    expect(s.size).toBe(0);
  });
});
