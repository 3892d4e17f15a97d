import { describe, expect, it } from "vitest";
import { jsonTooDeep, MAX_JSON_DEPTH } from "./json-depth.js";

const nested = (n: number) => "[".repeat(n) + "]".repeat(n);

describe("jsonTooDeep", () => {
  it("allows the limit and refuses one level more, arrays and objects alike", () => {
    expect(jsonTooDeep(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonTooDeep(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    const objects = `${'{"a":'.repeat(MAX_JSON_DEPTH + 1)}1${"}".repeat(MAX_JSON_DEPTH + 1)}`;
    expect(jsonTooDeep(objects)).toBe(true);
  });

  it("does not count brackets inside strings, escaped quotes included", () => {
    const inString = JSON.stringify({ s: nested(500), t: '\\"[[[' });
    expect(jsonTooDeep(inString)).toBe(false);
    expect(jsonTooDeep(`["\\"${"[".repeat(100)}"]`)).toBe(false);
  });

  it("counts depth, not brackets: long flat arrays pass", () => {
    expect(jsonTooDeep(JSON.stringify(Array.from({ length: 5000 }, () => [1])))).toBe(false);
  });

  it("agrees with what JSON.stringify can no longer write back", () => {
    const deep = nested(30_000);
    expect(jsonTooDeep(deep)).toBe(true);
    expect(() => JSON.stringify(JSON.parse(deep))).toThrow(RangeError);
  });
});
