/**
 * Sockudo tag filtering: event tags (set through the HTTP API) and the
 * filter a subscriber may send in `pusher:subscribe`. Pure: no I/O.
 *
 * Two spellings of one filter language are accepted:
 * - the seed's shorthand: `{"team": {"eq": "home"}}`, several keys ANDed,
 *   plus `{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}`;
 * - Sockudo's node form, which its client library sends:
 *   `{"key": "team", "cmp": "eq", "val": "home"}`,
 *   `{"op": "and", "nodes": [...]}`.
 */

export type Tags = Readonly<Record<string, string>>;

const COMPARISONS = [
  "eq",
  "neq",
  "in",
  "nin",
  "ex",
  "nex",
  "sw",
  "ew",
  "ct",
  "gt",
  "gte",
  "lt",
  "lte",
] as const;
type Comparison = (typeof COMPARISONS)[number];

export type TagFilter =
  | { kind: "cmp"; key: string; cmp: Comparison; values: readonly string[] }
  | { kind: "and" | "or"; nodes: readonly TagFilter[] }
  | { kind: "not"; node: TagFilter };

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** Bounds on what a publisher may attach: tags ride along with every stored copy. */
export const TAG_LIMITS = { count: 32, keyLength: 64, valueLength: 256 } as const;
/** Bounds on a filter: it is evaluated for every event, per filtering subscriber. */
export const FILTER_LIMITS = { nodes: 64, depth: 8, values: 100, valueLength: 256 } as const;

/** Shorthand aliases: `exists: true` reads better than `ex` in hand-written filters. */
const ALIASES: Record<string, Comparison> = { exists: "ex", ne: "neq" };
const LOGICAL = new Set(["and", "or", "not"]);

class InvalidFilter extends Error {}

/** Validates HTTP API `tags`: an object of at most 32 string values. */
export function parseTags(value: unknown): Parsed<Tags | undefined> {
  if (value === undefined || value === null) return { ok: true, value: undefined };
  if (!isObject(value)) return { ok: false, message: "tags must be an object of strings" };
  const entries = Object.entries(value);
  if (entries.length > TAG_LIMITS.count)
    return { ok: false, message: `at most ${TAG_LIMITS.count} tags` };
  const tags: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (k === "" || k.length > TAG_LIMITS.keyLength)
      return { ok: false, message: `tag names must be 1-${TAG_LIMITS.keyLength} characters` };
    if (typeof v !== "string")
      return { ok: false, message: `tag ${k.slice(0, 64)} must be a string` };
    if (v.length > TAG_LIMITS.valueLength)
      return {
        ok: false,
        message: `tag values must be at most ${TAG_LIMITS.valueLength} characters`,
      };
    tags[k] = v;
  }
  return { ok: true, value: entries.length === 0 ? undefined : tags };
}

/** Parses a subscribe `filter`; the message says what is wrong, for the subscription_error. */
export function parseFilter(value: unknown): Parsed<TagFilter> {
  const budget = { nodes: 0 };
  try {
    return { ok: true, value: node(value, 1, budget) };
  } catch (err) {
    if (err instanceof InvalidFilter) return { ok: false, message: err.message };
    throw err;
  }
}

function node(value: unknown, depth: number, budget: { nodes: number }): TagFilter {
  if (depth > FILTER_LIMITS.depth)
    throw new InvalidFilter(`filter nested deeper than ${FILTER_LIMITS.depth}`);
  if (++budget.nodes > FILTER_LIMITS.nodes)
    throw new InvalidFilter(`filter has more than ${FILTER_LIMITS.nodes} nodes`);
  if (!isObject(value)) throw new InvalidFilter("a filter must be an object");
  if (
    typeof value.op === "string" ||
    typeof value.key === "string" ||
    typeof value.cmp === "string"
  )
    return sockudoNode(value, depth, budget);
  const keys = Object.keys(value);
  if (keys.length === 0) throw new InvalidFilter("empty filter");
  const parts = keys.map((k): TagFilter => {
    const v = value[k];
    if (k === "not") return { kind: "not", node: node(v, depth + 1, budget) };
    if (k === "and" || k === "or") return { kind: k, nodes: list(v, k, depth, budget) };
    return conditions(k, v);
  });
  return allOf(parts);
}

function list(v: unknown, op: string, depth: number, budget: { nodes: number }): TagFilter[] {
  if (!Array.isArray(v) || v.length === 0)
    throw new InvalidFilter(`${op} needs a non-empty array of filters`);
  return v.map((n) => node(n, depth + 1, budget));
}

/** One filter as itself; several must all match. */
function allOf(parts: TagFilter[]): TagFilter {
  const [first, ...rest] = parts;
  return first && rest.length === 0 ? first : { kind: "and", nodes: parts };
}

/** Shorthand `{"team": {"eq": "home", "neq": "x"}}`: every comparison must hold. */
function conditions(key: string, v: unknown): TagFilter {
  if (!isObject(v)) throw new InvalidFilter(`condition on ${key.slice(0, 64)} must be an object`);
  const ops = Object.entries(v);
  if (ops.length === 0) throw new InvalidFilter(`condition on ${key.slice(0, 64)} is empty`);
  const parts = ops.map(([op, operand]) => leaf(key, op, operand));
  return allOf(parts);
}

function sockudoNode(
  v: Record<string, unknown>,
  depth: number,
  budget: { nodes: number },
): TagFilter {
  if (v.op !== undefined && v.op !== null && v.op !== "") {
    if (typeof v.op !== "string" || !LOGICAL.has(v.op))
      throw new InvalidFilter(`unknown op ${String(v.op).slice(0, 20)}`);
    const nodes = list(v.nodes, v.op, depth, budget);
    if (v.op === "not") {
      const [only] = nodes;
      if (nodes.length !== 1 || !only) throw new InvalidFilter("not takes exactly one node");
      return { kind: "not", node: only };
    }
    return { kind: v.op as "and" | "or", nodes };
  }
  if (typeof v.key !== "string") throw new InvalidFilter("a comparison needs a string key");
  if (typeof v.cmp !== "string") throw new InvalidFilter("a comparison needs a string cmp");
  const operand = v.cmp === "in" || v.cmp === "nin" ? v.vals : v.val;
  return leaf(v.key, v.cmp, operand);
}

function leaf(key: string, op: string, operand: unknown): TagFilter {
  if (key === "" || key.length > TAG_LIMITS.keyLength)
    throw new InvalidFilter(`tag names must be 1-${TAG_LIMITS.keyLength} characters`);
  const cmp = ALIASES[op] ?? op;
  if (!isComparison(cmp)) throw new InvalidFilter(`unknown comparison ${op.slice(0, 20)}`);
  if (cmp === "ex" || cmp === "nex") {
    // `{"exists": false}` is the shorthand for "the tag is absent".
    const negate = operand === false;
    return { kind: "cmp", key, cmp: negate === (cmp === "ex") ? "nex" : "ex", values: [] };
  }
  if (cmp === "in" || cmp === "nin") {
    if (!Array.isArray(operand) || operand.length === 0)
      throw new InvalidFilter(`${op} needs a non-empty array`);
    if (operand.length > FILTER_LIMITS.values)
      throw new InvalidFilter(`${op} takes at most ${FILTER_LIMITS.values} values`);
    return { kind: "cmp", key, cmp, values: operand.map(scalar) };
  }
  return { kind: "cmp", key, cmp, values: [scalar(operand)] };
}

/** Sockudo accepts numbers where strings are compared; tags are strings, so compare as text. */
function scalar(v: unknown): string {
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  if (typeof v !== "string") throw new InvalidFilter("values must be strings or numbers");
  if (v.length > FILTER_LIMITS.valueLength)
    throw new InvalidFilter(`values must be at most ${FILTER_LIMITS.valueLength} characters`);
  return v;
}

/**
 * Whether an event with `tags` passes. Every comparison but `nex` needs the
 * tag to be present, so an untagged event reaches only filters that ask for
 * absence.
 */
export function matchesFilter(f: TagFilter, tags: Tags | undefined): boolean {
  switch (f.kind) {
    case "and":
      return f.nodes.every((n) => matchesFilter(n, tags));
    case "or":
      return f.nodes.some((n) => matchesFilter(n, tags));
    case "not":
      return !matchesFilter(f.node, tags);
    case "cmp": {
      const v = tags && Object.hasOwn(tags, f.key) ? tags[f.key] : undefined;
      if (f.cmp === "nex") return v === undefined;
      if (v === undefined) return false;
      return compare(f.cmp, v, f.values);
    }
  }
}

function compare(cmp: Comparison, v: string, values: readonly string[]): boolean {
  const x = values[0] ?? "";
  switch (cmp) {
    case "ex":
      return true;
    case "eq":
      return v === x;
    case "neq":
      return v !== x;
    case "in":
      return values.includes(v);
    case "nin":
      return !values.includes(v);
    case "sw":
      return v.startsWith(x);
    case "ew":
      return v.endsWith(x);
    case "ct":
      return v.includes(x);
    default:
      return numeric(cmp, v, x);
  }
}

/** Ordering compares numbers: tags are text, so "10" > "9" only as numbers; non-numbers never match. */
function numeric(cmp: Comparison, v: string, x: string): boolean {
  const a = Number(v);
  const b = Number(x);
  if (v.trim() === "" || x.trim() === "" || !Number.isFinite(a) || !Number.isFinite(b))
    return false;
  if (cmp === "gt") return a > b;
  if (cmp === "gte") return a >= b;
  if (cmp === "lt") return a < b;
  return a <= b;
}

function isComparison(op: string): op is Comparison {
  return (COMPARISONS as readonly string[]).includes(op);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
