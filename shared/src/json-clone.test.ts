import { describe, expect, it } from "vitest";
import { cloneJson } from "./json-clone.js";

describe("cloneJson", () => {
  it("copies nested objects and arrays, sharing nothing with the original", () => {
    const original = { a: 1, b: [1, { c: "x" }, null], d: { e: true, f: undefined } };
    const copy = cloneJson(original);
    expect(copy).toStrictEqual(original);
    expect(copy).not.toBe(original);
    expect(copy.b).not.toBe(original.b);
    expect(copy.b[1]).not.toBe(original.b[1]);
    expect(copy.d).not.toBe(original.d);
    expect("f" in copy.d).toBe(true);
    (original.b[1] as { c: string }).c = "changed";
    expect((copy.b[1] as { c: string }).c).toBe("x");
  });

  it("returns primitives as they are", () => {
    for (const v of [null, 0, -1.5, "", "s", true, false]) expect(cloneJson(v)).toBe(v);
  });

  it("keeps a parsed __proto__ key as data, not as the copy's prototype", () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}') as Record<
      string,
      unknown
    >;
    const copy = cloneJson(parsed);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.keys(copy)).toEqual(["__proto__", "x"]);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
  });
});
