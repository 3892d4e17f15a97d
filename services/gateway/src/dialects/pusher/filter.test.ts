import { describe, expect, it } from "vitest";
import {
  FILTER_LIMITS,
  matchesFilter,
  parseFilter,
  parseTags,
  TAG_LIMITS,
  type TagFilter,
  type Tags,
} from "./filter.js";

const parse = (v: unknown): TagFilter => {
  const p = parseFilter(v);
  if (!p.ok) throw new Error(`unexpected refusal: ${p.message}`);
  return p.value;
};
const refusal = (v: unknown): string => {
  const p = parseFilter(v);
  if (p.ok) throw new Error("expected a refusal");
  return p.message;
};

const goalHome: Tags = { event_type: "goal", team: "home" };
const goalAway: Tags = { event_type: "goal", team: "away" };
const cardHome: Tags = { event_type: "card", team: "home", minute: "87" };

/** Which of the sample events a filter lets through, by label. */
const passes = (filter: unknown) =>
  Object.entries({ goalHome, goalAway, cardHome, untagged: undefined })
    .filter(([, tags]) => matchesFilter(parse(filter), tags))
    .map(([label]) => label);

describe("tag filters, seed shorthand", () => {
  it("eq, as in the seed", () => {
    expect(passes({ event_type: { eq: "goal" } })).toEqual(["goalHome", "goalAway"]);
  });

  it("neq needs the tag to be present", () => {
    expect(passes({ team: { neq: "home" } })).toEqual(["goalAway"]);
  });

  it("in and nin take arrays", () => {
    expect(passes({ team: { in: ["away", "neutral"] } })).toEqual(["goalAway"]);
    expect(passes({ event_type: { nin: ["goal"] } })).toEqual(["cardHome"]);
  });

  it("several keys, or several comparisons on one key, are ANDed", () => {
    expect(passes({ event_type: { eq: "goal" }, team: { eq: "home" } })).toEqual(["goalHome"]);
    expect(passes({ team: { neq: "away", in: ["home", "away"] } })).toEqual([
      "goalHome",
      "cardHome",
    ]);
  });

  it("and / or / not combine filters", () => {
    expect(passes({ or: [{ team: { eq: "away" } }, { event_type: { eq: "card" } }] })).toEqual([
      "goalAway",
      "cardHome",
    ]);
    expect(passes({ and: [{ team: { eq: "home" } }, { event_type: { eq: "goal" } }] })).toEqual([
      "goalHome",
    ]);
    expect(passes({ not: { team: { eq: "home" } } })).toEqual(["goalAway", "untagged"]);
  });

  it("exists, and exists: false for absence (the one thing untagged events match)", () => {
    expect(passes({ minute: { exists: true } })).toEqual(["cardHome"]);
    expect(passes({ minute: { exists: false } })).toEqual(["goalHome", "goalAway", "untagged"]);
  });

  it("numeric ordering compares as numbers", () => {
    expect(passes({ minute: { gte: 80 } })).toEqual(["cardHome"]);
    expect(passes({ minute: { lt: "9" } })).toEqual([]);
    expect(passes({ team: { gt: "1" } })).toEqual([]);
  });

  it("string prefix, suffix and containment", () => {
    expect(passes({ team: { sw: "ho" } })).toEqual(["goalHome", "cardHome"]);
    expect(passes({ team: { ew: "ay" } })).toEqual(["goalAway"]);
    expect(passes({ event_type: { ct: "oa" } })).toEqual(["goalHome", "goalAway"]);
  });
});

describe("tag filters, Sockudo node form", () => {
  it("leaf comparisons", () => {
    expect(passes({ key: "event_type", cmp: "eq", val: "goal" })).toEqual(["goalHome", "goalAway"]);
    expect(passes({ key: "team", cmp: "in", vals: ["away"] })).toEqual(["goalAway"]);
    expect(passes({ key: "minute", cmp: "nex" })).toEqual(["goalHome", "goalAway", "untagged"]);
  });

  it("branches", () => {
    const f = {
      op: "and",
      nodes: [
        { key: "team", cmp: "eq", val: "home" },
        { op: "not", nodes: [{ key: "event_type", cmp: "eq", val: "card" }] },
      ],
    };
    expect(passes(f)).toEqual(["goalHome"]);
  });
});

describe("malformed filters are refused with a reason", () => {
  it.each([
    ["not an object", "goal", "a filter must be an object"],
    ["empty", {}, "empty filter"],
    ["unknown comparison", { team: { like: "h%" } }, "unknown comparison like"],
    ["condition not an object", { team: "home" }, "condition on team must be an object"],
    ["in without array", { team: { in: "home" } }, "in needs a non-empty array"],
    ["empty or", { or: [] }, "or needs a non-empty array of filters"],
    ["non-scalar value", { team: { eq: { x: 1 } } }, "values must be strings or numbers"],
    ["unknown op", { op: "xor", nodes: [] }, "unknown op xor"],
    ["leaf without cmp", { key: "team", val: "x" }, "a comparison needs a string cmp"],
    [
      "not with two nodes",
      { op: "not", nodes: [{ a: { ex: true } }, { b: { ex: true } }] },
      "not takes exactly one node",
    ],
  ])("%s", (_label, filter, message) => {
    expect(refusal(filter)).toBe(message);
  });

  it("bounds depth, node count and list size", () => {
    let deep: unknown = { a: { eq: "x" } };
    for (let i = 0; i < FILTER_LIMITS.depth; i++) deep = { not: deep };
    expect(refusal(deep)).toMatch(/deeper than/);
    const wide = { or: Array.from({ length: FILTER_LIMITS.nodes }, () => ({ a: { eq: "x" } })) };
    expect(refusal(wide)).toMatch(/more than 64 nodes/);
    const many = { a: { in: Array.from({ length: FILTER_LIMITS.values + 1 }, String) } };
    expect(refusal(many)).toMatch(/at most 100 values/);
  });
});

describe("publisher tags", () => {
  it("accepts an object of strings; absent or empty means no tags", () => {
    expect(parseTags({ a: "1", b: "" })).toEqual({ ok: true, value: { a: "1", b: "" } });
    expect(parseTags(undefined)).toEqual({ ok: true, value: undefined });
    expect(parseTags({})).toEqual({ ok: true, value: undefined });
  });

  it.each([
    ["an array", ["a"]],
    ["a number value", { a: 1 }],
    [
      "too many",
      Object.fromEntries(Array.from({ length: TAG_LIMITS.count + 1 }, (_, i) => [`k${i}`, "v"])),
    ],
    ["a long key", { ["k".repeat(TAG_LIMITS.keyLength + 1)]: "v" }],
    ["a long value", { k: "v".repeat(TAG_LIMITS.valueLength + 1) }],
  ])("refuses %s", (_label, tags) => {
    expect(parseTags(tags).ok).toBe(false);
  });
});
