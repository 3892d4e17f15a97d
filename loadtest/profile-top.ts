/**
 * Reads a `.cpuprofile` (BENCH_CPU_PROF) and prints the functions with the
 * most self time, as shares: of all samples and of the non-idle ones (the
 * gateway's JavaScript and what V8 attributes to it: GC, program). Shares
 * are what a loaded machine does not distort much; absolute ms are printed
 * for scale only. `--last S` keeps the samples of the last S seconds before
 * the final `--tail` seconds (default 1, the shutdown), so a bench's
 * steady phase can be read without its start-up and connect phases.
 *
 *   npx tsx loadtest/profile-top.ts /tmp/prof/CPU.*.cpuprofile --last 20 --top 30
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    last: { type: "string", default: "0" },
    tail: { type: "string", default: "1" },
    top: { type: "string", default: "25" },
  },
});

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function label(n: Node): string {
  // Line and column as V8 reports them for the code it ran (under tsx: the
  // transpiled module, whose lines need not match the .ts file's).
  const { functionName, url, lineNumber, columnNumber } = n.callFrame;
  const file = url
    .replace(/^file:\/\//, "")
    .replace(/^.*\/(services|shared|node_modules)\//, "$1/")
    .replace(/^node:/, "node:");
  return `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}:${columnNumber + 1}` : ""}`.trim();
}

const IDLE = new Set(["(idle)"]);

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const times: number[] = [];
  let t = p.startTime;
  for (const d of p.timeDeltas) {
    t += d;
    times.push(t);
  }
  const end = p.endTime - Number(values.tail) * 1e6;
  const start = Number(values.last) > 0 ? end - Number(values.last) * 1e6 : p.startTime;
  const self = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const at = times[i] ?? 0;
    if (at < start || at > end) continue;
    const node = byId.get(p.samples[i] ?? -1);
    if (!node) continue;
    // Each sample stands for the interval to the next one.
    const dt = (times[i + 1] ?? at) - at;
    total += dt;
    const k = label(node);
    if (IDLE.has(node.callFrame.functionName)) idle += dt;
    self.set(k, (self.get(k) ?? 0) + dt);
    const f = fileOf(node);
    byFile.set(f, (byFile.get(f) ?? 0) + dt);
  }
  const busy = total - idle;
  console.log(
    `\n${file}: ${fmt(total / 1e3)} ms sampled, ${fmt(busy / 1e3)} ms not idle (${fmt((busy * 100) / total)}%)`,
  );
  console.log("  % busy  % all   self ms  function");
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
  for (const [k, us] of rows) {
    const ofBusy = IDLE.has(k) ? "" : fmt((us * 100) / busy);
    console.log(
      `  ${ofBusy.padStart(6)} ${fmt((us * 100) / total).padStart(6)} ${fmt(us / 1e3).padStart(9)}  ${k}`,
    );
  }
  console.log("  by file (package for node_modules), % busy:");
  const files = [...byFile].filter(([f]) => f !== "(idle)").sort((a, b) => b[1] - a[1]);
  for (const [f, us] of files.slice(0, Number(values.top)))
    console.log(`  ${fmt((us * 100) / busy).padStart(6)}  ${f}`);
}

/** The source file, or the package under node_modules, or V8's pseudo-frame name. */
function fileOf(n: Node): string {
  const { url, functionName } = n.callFrame;
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  return url.replace(/^file:\/\//, "").replace(/^.*\/(services|shared|loadtest)\//, "$1/");
}

function fmt(n: number): string {
  return Number.isFinite(n) ? n.toFixed(1) : "-";
}
