/** What every load script shares: options from flags or BENCH_* env, and the statistics it prints. */
import { parseArgs } from "node:util";

/**
 * `--name value` flags, each defaulting to `BENCH_<NAME>` from the
 * environment and then to `defaults`. Values stay strings; callers convert.
 */
export function benchOptions<K extends string>(defaults: Record<K, string>): Record<K, string> {
  const names = Object.keys(defaults) as K[];
  const options: Record<string, { type: "string"; default: string }> = {};
  for (const k of names) {
    options[k] = {
      type: "string",
      default: process.env[`BENCH_${k.toUpperCase()}`] ?? defaults[k],
    };
  }
  const { values } = parseArgs({ options });
  const out = {} as Record<K, string>;
  for (const k of names) out[k] = String(values[k]);
  return out;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const lo = s[(s.length - 1) >> 1];
  const hi = s[s.length >> 1];
  // Both are missing only when there are no values.
  return lo === undefined || hi === undefined ? Number.NaN : (lo + hi) / 2;
};

export const fmt = (n: number, digits = 1): string =>
  Number.isFinite(n) ? n.toFixed(digits) : "-";

/**
 * Which medians to divide: every server by `soketi` when it is in the run
 * (the ratios are all "to Soketi"), else the first listed by each
 * other one.
 */
export function ratioPairs<S extends string>(servers: readonly S[]): [S, S][] {
  const peer = servers.find((s) => s === "soketi");
  if (peer) return servers.filter((s) => s !== peer).map((s) => [s, peer]);
  const [first, ...others] = servers;
  return first === undefined ? [] : others.map((o) => [first, o]);
}
