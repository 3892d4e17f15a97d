/**
 * Where a connection's and a channel's bytes go on the gateway. For each
 * `--channels` mode (`none`: N bare Pusher connections; `each`: N
 * connections with a channel of their own) it starts a fresh gateway under
 * `--heapsnapshot-signal`, takes a heap snapshot idle and one holding the
 * N connections (a snapshot runs a full GC first, so these are live bytes),
 * and prints the difference ÷ N by constructor, with the biggest retainers
 * (parent constructor and edge) of each. For `tidings-nats` it also reads the
 * nats-server's /connz and /subsz before and after: NATS subscriptions and
 * messages in/out of the gateway's connection per connection. RSS (per
 * process, read before each snapshot, as writing one grows the process) from
 * /proc, and the CPU each process uses while holding the connections idle for
 * `--idle` seconds (timers, keep-alives, position checks) beyond what it used
 * with no connection over as long. A script, not a test.
 *
 *   npx tsx loadtest/gateway-heap.ts --conns 5000 --server tidings-nats
 *   npx tsx loadtest/gateway-heap.ts --server tidings --channels each --top 40
 *   BENCH_BASE_DIR=/tmp/tidings-base npx tsx loadtest/gateway-heap.ts --server base
 */
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type WebSocket from "ws";
import { at } from "../shared/test/defined.js";
import { benchOptions, fmt } from "./bench-kit.js";
import { CHANNEL, pusher } from "./gateway-clients.js";
import {
  procCpuSeconds,
  procRssMiB,
  type RunningServer,
  type ServerName,
  serverNames,
  startServer,
} from "./gateway-servers.js";

const args = benchOptions({
  conns: "5000",
  server: "tidings",
  channels: "none,each",
  inflight: "100",
  top: "25",
  idle: "10",
});
const opt = {
  conns: Number(args.conns),
  server: args.server as ServerName,
  modes: args.channels.split(","),
  inflight: Number(args.inflight),
  top: Number(args.top),
  idleSec: Number(args.idle),
};
if (!serverNames.includes(opt.server))
  throw new Error(
    `--server: one of ${serverNames.join(", ")} (base trees from BENCH_BASE_DIR, soketi from SOKETI_DIR)`,
  );

const baseNodeArgs = process.env.BENCH_NODE_ARGS ?? "";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Snapshot {
  /** "what" key → [count, self bytes]. */
  byClass: Map<string, [number, number]>;
  /** "what" key → retainer "parent.edge" → self bytes of the children held that way. */
  retainers: Map<string, Map<string, number>>;
  total: number;
}

/** Reads a .heapsnapshot: self sizes by constructor, and who holds each kind. */
function readSnapshot(file: string): Snapshot {
  const snap = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: {
      meta: {
        node_fields: string[];
        node_types: [string[]];
        edge_fields: string[];
        edge_types: [string[]];
      };
    };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const { meta } = snap.snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const [nType, nName, nSize, nEdges] = ["type", "name", "self_size", "edge_count"].map((f) =>
    meta.node_fields.indexOf(f),
  ) as [number, number, number, number];
  const [eType, eName, eTo] = ["type", "name_or_index", "to_node"].map((f) =>
    meta.edge_fields.indexOf(f),
  ) as [number, number, number];
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = snap;
  const count = nodes.length / nf;
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0; i < count; i++)
    firstEdge[i + 1] = (firstEdge[i] ?? 0) + (nodes[i * nf + nEdges] ?? 0);
  /** The node an edge named `name` of node i leads to, or -1. */
  const follow = (i: number, name: string): number => {
    for (let e = firstEdge[i] ?? 0; e < (firstEdge[i + 1] ?? 0); e++) {
      const t = edgeTypes[edges[e * ef + eType] ?? 0];
      if (t !== "element" && t !== "hidden" && strings[edges[e * ef + eName] ?? 0] === name)
        return (edges[e * ef + eTo] ?? 0) / nf;
    }
    return -1;
  };
  // Closure -> its source file (closure.shared.script_or_debug_info) and line (locations).
  const line = new Map<number, number>();
  const locs = (snap as unknown as { locations?: number[] }).locations ?? [];
  for (let i = 0; i + 3 < locs.length; i += 4)
    line.set((locs[i] ?? 0) / nf, (locs[i + 2] ?? 0) + 1);
  const whereCache = new Map<number, string>();
  const where = (i: number): string => {
    const shared = follow(i, "shared");
    // The script node's own name is its URL.
    const script = shared < 0 ? -1 : follow(shared, "script_or_debug_info");
    let file = whereCache.get(script);
    if (file === undefined) {
      file = script < 0 ? "?" : String(strings[nodes[script * nf + nName] ?? 0]);
      file = file.replace(/^.*\/(services|shared|node_modules)\//, "$1/");
      whereCache.set(script, file);
    }
    return `${file}:${line.get(i) ?? "?"}`;
  };
  const key = (i: number): string => {
    const type = at(nodeTypes, at(nodes, i * nf + nType));
    const name = at(strings, at(nodes, i * nf + nName));
    if (type === "object" || type === "native") return name.slice(0, 60);
    if (type === "closure") return `(closure ${name.slice(0, 30) || "anon"} ${where(i)})`;
    if (type === "string" || type === "concatenated string" || type === "sliced string")
      return "(string)";
    if (type === "hidden" || type === "code" || type === "array")
      return `(${type} ${name.slice(0, 40)})`;
    return `(${type})`;
  };
  const keys: string[] = new Array(count);
  const byClass = new Map<string, [number, number]>();
  let total = 0;
  for (let i = 0; i < count; i++) {
    const k = key(i);
    keys[i] = k;
    const size = at(nodes, i * nf + nSize);
    total += size;
    const e = byClass.get(k) ?? [0, 0];
    e[0]++;
    e[1] += size;
    byClass.set(k, e);
  }
  const retainers = new Map<string, Map<string, number>>();
  let edge = 0;
  for (let i = 0; i < count; i++) {
    const n = at(nodes, i * nf + nEdges);
    for (let j = 0; j < n; j++, edge++) {
      const type = at(edgeTypes, at(edges, edge * ef + eType));
      if (type === "weak" || type === "shortcut") continue;
      const to = at(edges, edge * ef + eTo) / nf;
      const nameOrIndex = at(edges, edge * ef + eName);
      const label =
        type === "element" || type === "hidden" ? `[${type}]` : String(strings[nameOrIndex]);
      const via = `${keys[i]}.${label.slice(0, 30)}`;
      const child = at(keys, to);
      const m = retainers.get(child) ?? new Map<string, number>();
      m.set(via, (m.get(via) ?? 0) + at(nodes, to * nf + nSize));
      retainers.set(child, m);
    }
  }
  return { byClass, retainers, total };
}

async function snapshot(server: RunningServer, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(server.pid, "SIGUSR2");
  const deadline = Date.now() + 120_000;
  for (;;) {
    const added = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith(".heapsnapshot"));
    const file = added[0] && join(dir, added[0]);
    // Written in one go; done when the size stops changing.
    if (file && existsSync(file)) {
      const a = statSync(file).size;
      await sleep(500);
      if (a > 0 && statSync(file).size === a) return file;
    } else if (Date.now() > deadline) throw new Error("no heap snapshot written");
    else await sleep(200);
  }
}

interface NatsCounts {
  subs: number;
  inMsgs: number;
  outMsgs: number;
}

async function natsCounts(server: RunningServer): Promise<NatsCounts | undefined> {
  if (!server.natsMonitor) return undefined;
  const connz = (await (await fetch(`${server.natsMonitor}/connz?subs=1`)).json()) as {
    connections: { name?: string; subscriptions: number; in_msgs: number; out_msgs: number }[];
  };
  const gw = connz.connections.filter((c) => c.name?.startsWith("tidings"));
  return {
    subs: gw.reduce((s, c) => s + c.subscriptions, 0),
    inMsgs: gw.reduce((s, c) => s + c.in_msgs, 0),
    outMsgs: gw.reduce((s, c) => s + c.out_msgs, 0),
  };
}

async function runMode(mode: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "tdg-heap-"));
  process.env.BENCH_NODE_ARGS = `${baseNodeArgs} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`;
  const server = await startServer(opt.server);
  const sockets: WebSocket[] = [];
  try {
    await sleep(1500);
    // The server's own background CPU with no connection, to subtract below.
    const base0 = server.pids.map(procCpuSeconds);
    await sleep(opt.idleSec * 1000);
    const baseCpu = server.pids.map((p, i) => procCpuSeconds(p) - (base0[i] ?? 0));
    const rss0 = server.rssMiB();
    const parts0 = server.pids.map(procRssMiB);
    const idleFile = await snapshot(server, dir);
    const nats0 = await natsCounts(server);
    let next = 0;
    await Promise.all(
      Array.from({ length: opt.inflight }, async () => {
        while (next < opt.conns) {
          const n = next++;
          sockets.push(
            mode === "none"
              ? await pusher.connect(server.port)
              : await pusher.subscribe(server.port, n, () => {}, `${CHANNEL}-${n}`),
          );
        }
      }),
    );
    await sleep(1500);
    const nats1 = await natsCounts(server);
    // RSS before the snapshot: writing one grows the process for a while.
    const rss1 = server.rssMiB();
    const parts1 = server.pids.map(procRssMiB);
    // CPU while holding them and doing nothing: timers, keep-alives, position checks.
    const cpu0 = server.pids.map(procCpuSeconds);
    await sleep(opt.idleSec * 1000);
    const idleCpu = server.pids.map(
      (p, i) => procCpuSeconds(p) - (cpu0[i] ?? 0) - (baseCpu[i] ?? 0),
    );
    const heldFile = await snapshot(server, dir);
    // BENCH_HEAP_KEEP=<dir>: keep the held snapshot, to read in DevTools or by path.
    const keep = process.env.BENCH_HEAP_KEEP;
    if (keep) copyFileSync(heldFile, join(keep, `${opt.server}-${mode}-${opt.conns}.heapsnapshot`));
    const a = readSnapshot(idleFile);
    const b = readSnapshot(heldFile);
    const n = opt.conns;
    console.log(
      `\n== ${opt.server}, ${n} conns, channels ${mode}: RSS ${fmt(rss0, 0)} -> ${fmt(rss1, 0)} MiB ` +
        `(${fmt(((rss1 - rss0) * 1024) / n, 2)} KiB/conn${server.pids.length > 1 ? ", gateway + nats-server" : ""}), ` +
        `V8 heap ${fmt(a.total / 2 ** 20, 1)} -> ${fmt(b.total / 2 ** 20, 1)} MiB (${fmt((b.total - a.total) / n, 0)} B/conn)`,
    );
    const names = ["gateway", "nats-server"];
    console.log(
      `   RSS per process: ${server.pids
        .map(
          (_, i) =>
            `${names[i]} ${fmt((((parts1[i] ?? 0) - (parts0[i] ?? 0)) * 1024) / n, 2)} KiB/conn`,
        )
        .join(", ")}; ` +
        `idle CPU over ${opt.idleSec} s beyond the empty server's: ${idleCpu
          .map(
            (c, i) =>
              `${names[i]} ${fmt((c * 1e6) / opt.idleSec / n, 2)} µs/s per conn (${fmt((c * 100) / opt.idleSec, 1)}% of a core)`,
          )
          .join(", ")}`,
    );
    if (nats0 && nats1) {
      console.log(
        `   NATS (gateway connection): subscriptions ${nats0.subs} -> ${nats1.subs} ` +
          `(${fmt((nats1.subs - nats0.subs) / n, 2)}/conn), msgs in ${fmt((nats1.inMsgs - nats0.inMsgs) / n, 2)}/conn, ` +
          `out ${fmt((nats1.outMsgs - nats0.outMsgs) / n, 2)}/conn (during connect+subscribe and 1.5 s after)`,
      );
    }
    const rows = [...b.byClass].map(([k, [count, bytes]]) => {
      const [c0, b0] = a.byClass.get(k) ?? [0, 0];
      return { k, count: (count - c0) / n, bytes: (bytes - b0) / n };
    });
    rows.sort((x, y) => y.bytes - x.bytes);
    console.log("   B/conn  objs/conn  what  <- biggest retainers (parent.edge: B/conn)");
    for (const r of rows.slice(0, opt.top)) {
      const held = [...(b.retainers.get(r.k) ?? [])]
        .map(([via, bytes]) => {
          const before = a.retainers.get(r.k)?.get(via) ?? 0;
          return [via, (bytes - before) / n] as const;
        })
        .filter(([, x]) => x > 0.5)
        .sort((x, y) => y[1] - x[1])
        .slice(0, 3)
        .map(([via, x]) => `${via}: ${fmt(x, 0)}`)
        .join("; ");
      console.log(
        `   ${fmt(r.bytes, 0).padStart(6)} ${fmt(r.count, 2).padStart(9)}  ${r.k}  <- ${held}`,
      );
    }
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  for (const mode of opt.modes) await runMode(mode);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
