/**
 * Real `nats-server` processes for tests: a single JetStream node or a
 * 3-node JetStream cluster, each node on free ports with its own temp store.
 *
 * Each node's ports are reserved up front (`ports.ts`: below the ephemeral
 * range, so no client socket takes one while its node is down) and a
 * restart reuses them so clients (and routes) find it again.
 * Every wait is on a condition (ports file written, meta leader elected)
 * raced against the process exiting early, never on a fixed sleep.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { reservePort } from "./ports.js";

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
/** Where .ci/newer-nats.sh unpacks a current nats-server from Debian. */
const NEWER_DIR = fileURLToPath(new URL("../../.tmp/nats-server/", import.meta.url));

export interface NatsServerBinary {
  /** e.g. "nats-server v2.9.10", or why there is no such binary here. */
  label: string;
  /** Path of the binary; null when it is not available here. */
  bin: string | null;
}

/**
 * The servers fault tests run on: the default binary (Debian bookworm's
 * 2.9.10, or NATS_SERVER_BIN) and the current one `.ci/newer-nats.sh`
 * fetched (NATS_SERVER_NEWER_BIN overrides). 2.9 has replica bugs that newer
 * servers fixed; Tidings must be correct on both. A missing newer binary
 * yields an entry with `bin: null`, for tests to skip visibly.
 */
export function natsServerBinaries(): NatsServerBinary[] {
  const newer = process.env.NATS_SERVER_NEWER_BIN ?? findNewer();
  return [
    { label: versionOf(NATS_SERVER), bin: NATS_SERVER },
    newer
      ? { label: versionOf(newer), bin: newer }
      : { label: "newer nats-server (not fetched: run bash .ci/newer-nats.sh)", bin: null },
  ];
}

function findNewer(): string | undefined {
  if (!existsSync(NEWER_DIR)) return undefined;
  const versions = readdirSync(NEWER_DIR).sort((a, b) =>
    a.localeCompare(b, "en", { numeric: true }),
  );
  for (const v of versions.reverse()) {
    const bin = join(NEWER_DIR, v, "usr", "sbin", "nats-server");
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

function versionOf(bin: string): string {
  try {
    return execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return `nats-server at ${bin}`;
  }
}

// If the test process dies without running disposers (crash, EPIPE, worker
// killed), take the servers and their temp dirs with it rather than orphan them.
const liveProcs = new Set<ChildProcess>();
const liveRoots = new Set<string>();
process.once("exit", () => {
  for (const p of liveProcs) p.kill("SIGKILL");
  for (const r of liveRoots) rmSync(r, { recursive: true, force: true });
});
const START_TIMEOUT_MS = 10_000;

export class NatsHarnessError extends Error {
  override name = "NatsHarnessError";
}

interface Ports {
  client: number;
  monitor: number;
  cluster?: number | undefined;
}

interface Node {
  name: string;
  dir: string;
  ports: Ports;
  proc: ChildProcess | null;
  stderr: string;
}

export interface NatsHandle extends AsyncDisposable {
  /** One client URL per node, index-aligned with `kill`/`restart`. */
  readonly urls: string[];
  /** The client URL of node `index`; throws when there is no such node. */
  url(index: number): string;
  /** Kills one node (SIGKILL by default, for crash tests) and waits for it to exit. */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a killed node again on the same ports and store. */
  restart(index: number): Promise<void>;
  /** Freezes a node (SIGSTOP): it holds its connections but processes nothing. */
  pause(index: number): void;
  /** Lets a paused node run again (SIGCONT). */
  resume(index: number): void;
  /** Node index of the current JetStream meta leader (cluster only). */
  metaLeader(): Promise<number>;
  /** Node index leading a stream (cluster only). */
  streamLeader(stream: string): Promise<number>;
  /** Last seq of a stream in one node's own store (null if it has none or does not answer). */
  replicaLastSeq(index: number, stream: string): Promise<number | null>;
  /** Client connections open on one node, as its monitoring endpoint lists them (`/connz`), with their subscription counts. */
  clients(index: number): Promise<{ name: string; port: number; subscriptions: number }[]>;
  /** JetStream API requests one node has handled since it started (`/jsz` api.total). */
  jsApiRequests(index: number): Promise<number>;
  /** Kills every node and removes every temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  jetstream?: boolean;
  /** nats-server binary (default NATS_SERVER_BIN or /usr/sbin/nats-server). */
  bin?: string | undefined;
}

/** A single node. */
export async function startNats(options: StartOptions = {}): Promise<NatsHandle> {
  const root = await mkdtemp(join(tmpdir(), "tdg-nats-"));
  const cluster = new Cluster(root, 1, options.jetstream ?? true, false, options.bin);
  try {
    await cluster.startAll();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** An `n`-node cluster with JetStream, ready once a meta leader sees every peer. */
export async function startCluster(n = 3, options: StartOptions = {}): Promise<NatsHandle> {
  const root = await mkdtemp(join(tmpdir(), "tdg-natsc-"));
  const cluster = new Cluster(root, n, true, true, options.bin);
  try {
    await cluster.startAll();
    await cluster.waitForMeta();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

class Cluster implements NatsHandle {
  private readonly nodes: Node[] = [];
  private stopped = false;

  constructor(
    private readonly root: string,
    n: number,
    private readonly jetstream: boolean,
    private readonly clustered: boolean,
    private readonly bin = NATS_SERVER,
  ) {
    liveRoots.add(root);
    for (let i = 0; i < n; i++) {
      this.nodes.push({
        name: `n${i}`,
        dir: join(root, `n${i}`),
        ports: { client: -1, monitor: -1, cluster: clustered ? -1 : undefined },
        proc: null,
        stderr: "",
      });
    }
  }

  get urls(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.ports.client}`);
  }

  url(index: number): string {
    const url = this.urls[index];
    if (url === undefined) throw new Error(`no NATS node ${index}: there are ${this.nodes.length}`);
    return url;
  }

  async startAll(): Promise<void> {
    // Every node's ports are known before any starts: JetStream refuses to
    // start clustered without its peers' route ports, and a restart must
    // find its client and monitor ports free again.
    for (const n of this.nodes) {
      n.ports.client = await reservePort();
      n.ports.monitor = await reservePort();
      if (this.clustered) n.ports.cluster = await reservePort();
    }
    await Promise.all(this.nodes.map((n) => this.launch(n)));
  }

  private config(node: Node): string {
    const lines = [
      `server_name: ${node.name}`,
      "host: 127.0.0.1",
      `port: ${node.ports.client}`,
      `http_port: ${node.ports.monitor}`,
      `ports_file_dir: ${JSON.stringify(node.dir)}`,
    ];
    if (this.jetstream) {
      lines.push(`jetstream { store_dir: ${JSON.stringify(join(node.dir, "js"))} }`);
    }
    if (this.clustered) {
      const routes = this.nodes
        .filter((o) => o !== node && o.ports.cluster !== undefined && o.ports.cluster > 0)
        .map((o) => JSON.stringify(`nats-route://127.0.0.1:${o.ports.cluster}`));
      lines.push(
        "cluster {",
        "  name: tdg",
        "  host: 127.0.0.1",
        `  port: ${node.ports.cluster}`,
        `  routes: [${routes.join(", ")}]`,
        "}",
      );
    }
    return `${lines.join("\n")}\n`;
  }

  private async launch(node: Node): Promise<void> {
    if (this.stopped) throw new NatsHarnessError("harness stopped");
    await mkdir(node.dir, { recursive: true });
    const conf = join(node.dir, "server.conf");
    await writeFile(conf, this.config(node));
    const proc = spawn(this.bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    node.proc = proc;
    liveProcs.add(proc);
    proc.once("exit", () => liveProcs.delete(proc));
    node.stderr = "";
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (chunk: string) => {
      // Keep only the tail: enough to explain a failed start.
      node.stderr = (node.stderr + chunk).slice(-4000);
    });
    const exited = once(proc, "exit").then(([code, signal]) => {
      throw new NatsHarnessError(
        `nats-server ${node.name} exited early (code ${code}, signal ${signal}):\n${node.stderr}`,
      );
    });
    // The exit race below is only meaningful until the server is up.
    exited.catch(() => {});
    const portsFile = join(node.dir, `nats-server_${proc.pid}.ports`);
    const ports = await Promise.race([waitForPortsFile(portsFile), exited]);
    node.ports = { ...node.ports, ...ports };
  }

  /**
   * Ready when every running node names the same meta leader and that leader
   * sees all other running nodes as current (replicas are only reported by
   * the leader itself).
   */
  async waitForMeta(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const running = this.nodes.filter((n) => n.proc);
      const states = await Promise.all(running.map((n) => jsz(n).catch(() => null)));
      const leaders = new Set(states.map((s) => s?.meta_cluster?.leader ?? ""));
      const [leader] = leaders;
      if (leaders.size === 1 && leader) {
        const own = states[running.findIndex((n) => n.name === leader)];
        const current = (own?.meta_cluster?.replicas ?? []).filter((r) => r.current).length;
        if (current >= running.length - 1) return;
      }
      if (Date.now() > deadline) {
        throw new NatsHarnessError(`no JetStream meta leader in time: ${JSON.stringify(states)}`);
      }
      await pause(20);
    }
  }

  async metaLeader(): Promise<number> {
    for (const n of this.nodes) {
      const s = await jsz(n).catch(() => null);
      const leader = s?.meta_cluster?.leader;
      if (leader) {
        const idx = this.nodes.findIndex((x) => x.name === leader);
        if (idx >= 0) return idx;
      }
    }
    throw new NatsHarnessError("no meta leader");
  }

  async streamLeader(stream: string): Promise<number> {
    for (const n of this.nodes) {
      if (!n.proc) continue;
      const res = await fetch(
        `http://127.0.0.1:${n.ports.monitor}/jsz?streams=true&accounts=true`,
        {
          // A paused node accepts the connection and never answers.
          signal: AbortSignal.timeout(2000),
        },
      ).catch(() => null);
      if (!res?.ok) continue;
      const body: unknown = await res.json();
      const leader = findStreamLeader(body, stream);
      if (leader) {
        const idx = this.nodes.findIndex((x) => x.name === leader);
        if (idx >= 0) return idx;
      }
    }
    throw new NatsHarnessError(`no leader for stream ${stream}`);
  }

  async replicaLastSeq(index: number, stream: string): Promise<number | null> {
    const n = this.node(index);
    if (!n.proc) return null;
    const res = await fetch(`http://127.0.0.1:${n.ports.monitor}/jsz?streams=true&accounts=true`, {
      signal: AbortSignal.timeout(2000),
    }).catch(() => null);
    if (!res?.ok) return null;
    const accounts = ((await res.json()) as { account_details?: unknown }).account_details;
    if (!Array.isArray(accounts)) return null;
    for (const acc of accounts as { stream_detail?: unknown }[]) {
      if (!Array.isArray(acc.stream_detail)) continue;
      for (const s of acc.stream_detail as { name?: string; state?: { last_seq?: number } }[]) {
        if (s.name === stream) return s.state?.last_seq ?? null;
      }
    }
    return null;
  }

  async clients(index: number): Promise<{ name: string; port: number; subscriptions: number }[]> {
    const n = this.node(index);
    const res = await fetch(`http://127.0.0.1:${n.ports.monitor}/connz?limit=1024`, {
      signal: AbortSignal.timeout(2000),
    });
    if (!res.ok) throw new NatsHarnessError(`connz answered ${res.status}`);
    const body = (await res.json()) as {
      connections?: { name?: string; port: number; subscriptions?: number }[];
    };
    return (body.connections ?? []).map((c) => ({
      name: c.name ?? "",
      port: c.port,
      subscriptions: c.subscriptions ?? 0,
    }));
  }

  async jsApiRequests(index: number): Promise<number> {
    const body = (await jsz(this.node(index))) as { api?: { total?: number } };
    return body.api?.total ?? 0;
  }

  async kill(index: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const node = this.node(index);
    const proc = node.proc;
    if (!proc) return;
    node.proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill(signal);
    await exited;
  }

  async restart(index: number): Promise<void> {
    const node = this.node(index);
    if (node.proc) throw new NatsHarnessError(`node ${index} is still running`);
    await this.launch(node);
    if (this.clustered) await this.waitForMeta();
  }

  pause(index: number): void {
    this.node(index).proc?.kill("SIGSTOP");
  }

  resume(index: number): void {
    this.node(index).proc?.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.nodes.map((_, i) => this.kill(i)));
    await rm(this.root, { recursive: true, force: true });
    liveRoots.delete(this.root);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private node(index: number): Node {
    const node = this.nodes[index];
    if (!node) throw new NatsHarnessError(`no node ${index}`);
    return node;
  }
}

interface Jsz {
  meta_cluster?: {
    leader?: string;
    cluster_size?: number;
    replicas?: { name: string; current: boolean }[];
  };
}

async function jsz(node: Node): Promise<Jsz> {
  if (!node.proc) throw new NatsHarnessError("node down");
  const res = await fetch(`http://127.0.0.1:${node.ports.monitor}/jsz`, {
    signal: AbortSignal.timeout(2000),
  });
  return (await res.json()) as Jsz;
}

function findStreamLeader(body: unknown, stream: string): string | null {
  const accounts = (body as { account_details?: unknown }).account_details;
  if (!Array.isArray(accounts)) return null;
  for (const acc of accounts as { stream_detail?: unknown }[]) {
    if (!Array.isArray(acc.stream_detail)) continue;
    for (const s of acc.stream_detail as { name?: string; cluster?: { leader?: string } }[]) {
      if (s.name === stream && s.cluster?.leader) return s.cluster.leader;
    }
  }
  return null;
}

async function waitForPortsFile(file: string): Promise<Ports> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const text = await readFile(file, "utf8").catch(() => "");
    // The server writes the file once listeners are up; an empty read is a write in progress.
    if (text) {
      try {
        const parsed = JSON.parse(text) as {
          nats?: string[];
          monitoring?: string[];
          cluster?: string[];
        };
        const client = portOf(parsed.nats);
        const monitor = portOf(parsed.monitoring);
        if (client && monitor) return { client, monitor };
      } catch {
        // Partially written JSON: read again.
      }
    }
    if (Date.now() > deadline) throw new NatsHarnessError(`ports file ${file} not written`);
    await pause(5);
  }
}

function portOf(urls: string[] | undefined): number | undefined {
  const first = urls?.[0];
  if (!first) return undefined;
  const port = Number(new URL(first).port);
  return port > 0 ? port : undefined;
}

/** Poll interval between condition checks; not a wait for an outcome. */
function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
