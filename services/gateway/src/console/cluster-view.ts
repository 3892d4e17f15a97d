import type { Closable, ClusterBus } from "../../../../shared/src/cluster/bus.js";
import type { ProcessStats } from "../../../../shared/src/cluster/messages.js";
import type { Scope } from "./auth.js";

/** Samples kept per process for its sparklines: two minutes at one a second. */
export const HISTORY_SAMPLES = 120;
/** A process this many intervals late is shown as silent... */
const SILENT_AFTER_INTERVALS = 3.5;
/** ...and forgotten after this long. */
const FORGET_AFTER_MS = 60_000;

export interface Sample {
  at: number;
  connections: number;
  msgsInPerSec: number | null;
  msgsOutPerSec: number | null;
  loopLagMs: number;
}

interface Entry {
  stats: ProcessStats;
  receivedAt: number;
  history: Sample[];
  /** Per app: its connections here, for app-scoped sparklines. */
  apps: Map<string, Sample[]>;
}

export type ProcessState = "up" | "draining" | "silent";

export interface ProcessView {
  kind: ProcessStats["kind"];
  id: string;
  host: string;
  pid: number;
  state: ProcessState;
  /** When its last stats arrived (this gateway's clock). */
  lastSeenAt: number;
  startedAt: number;
  natsConnected: boolean;
  rssBytes: number;
  heapUsedBytes: number;
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  partitions?: number | undefined;
  /** Gateways: for an app-scoped session, that app's share only. */
  connections?: number | undefined;
  channels?: number | undefined;
  msgsInPerSec?: number | null | undefined;
  msgsOutPerSec?: number | null | undefined;
  /** Events of the app published through this gateway per second (app views only). */
  eventsPerSec?: number | null | undefined;
  history: Sample[];
}

/**
 * Every process's latest stats and recent history, as heard on the bus by
 * the gateway serving the console. Processes are keyed by (kind, id): a
 * restarted gateway is a new id and the old one turns silent, then goes.
 */
export class ClusterView {
  private readonly entries = new Map<string, Entry>();
  private readonly sub: Closable;

  constructor(
    bus: ClusterBus,
    private readonly now: () => number = Date.now,
  ) {
    this.sub = bus.onStats((s) => this.add(s));
  }

  add(stats: ProcessStats): void {
    const key = `${stats.kind}\u0000${stats.id}`;
    let e = this.entries.get(key);
    if (!e) {
      e = { stats, receivedAt: 0, history: [], apps: new Map() };
      this.entries.set(key, e);
    }
    e.stats = stats;
    e.receivedAt = this.now();
    const g = stats.gateway;
    const sample = (
      connections: number,
      msgsInPerSec: number | null,
      msgsOutPerSec: number | null,
    ): Sample => ({
      at: stats.at,
      connections,
      msgsInPerSec,
      msgsOutPerSec,
      loopLagMs: stats.loopLagP99Ms,
    });
    push(e.history, sample(g?.connections ?? 0, g?.msgsInPerSec ?? null, g?.msgsOutPerSec ?? null));
    if (!g) return;
    for (const appId of new Set([...e.apps.keys(), ...Object.keys(g.apps)])) {
      let h = e.apps.get(appId);
      if (!h) {
        h = [];
        e.apps.set(appId, h);
      }
      // An app with no connections here any more drops to zero rather than freezing,
      // and is forgotten once its whole history is zero.
      const a = g.apps[appId];
      push(h, sample(a?.connections ?? 0, a?.msgsInPerSec ?? null, a?.msgsOutPerSec ?? null));
      if (!a && h.every((x) => x.connections === 0 && !x.msgsInPerSec && !x.msgsOutPerSec))
        e.apps.delete(appId);
    }
  }

  /** Gateways heard from recently: how many answers a scatter-gather can expect. */
  liveGateways(): number {
    return this.processes({ kind: "cluster" }).filter(
      (p) => p.kind === "gateway" && p.state !== "silent",
    ).length;
  }

  processes(scope: Scope): ProcessView[] {
    const now = this.now();
    const out: ProcessView[] = [];
    for (const [key, e] of this.entries) {
      const silentFor = now - e.receivedAt;
      if (silentFor > FORGET_AFTER_MS) {
        this.entries.delete(key);
        continue;
      }
      const s = e.stats;
      const state: ProcessState =
        silentFor > s.intervalMs * SILENT_AFTER_INTERVALS
          ? "silent"
          : s.draining
            ? "draining"
            : "up";
      const view: ProcessView = {
        kind: s.kind,
        id: s.id,
        host: s.host,
        pid: s.pid,
        state,
        lastSeenAt: e.receivedAt,
        startedAt: s.startedAt,
        natsConnected: s.natsConnected,
        rssBytes: s.rssBytes,
        heapUsedBytes: s.heapUsedBytes,
        loopLagP99Ms: s.loopLagP99Ms,
        loopLagMaxMs: s.loopLagMaxMs,
        partitions: s.partitions,
        history: e.history,
      };
      const g = s.gateway;
      if (g && scope.kind === "cluster") {
        Object.assign(view, {
          connections: g.connections,
          channels: g.channels,
          msgsInPerSec: g.msgsInPerSec,
          msgsOutPerSec: g.msgsOutPerSec,
        });
      } else if (g && scope.kind === "app") {
        const a = g.apps[scope.appId];
        const per = e.apps.get(scope.appId) ?? [];
        Object.assign(view, {
          connections: a?.connections ?? 0,
          channels: a?.channels ?? 0,
          msgsInPerSec: a?.msgsInPerSec ?? null,
          msgsOutPerSec: a?.msgsOutPerSec ?? null,
          eventsPerSec: a?.eventsPerSec ?? null,
          history: per,
        });
      }
      out.push(view);
    }
    return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.startedAt - b.startedAt);
  }

  close(): void {
    this.sub.close();
  }
}

function push(h: Sample[], s: Sample): void {
  h.push(s);
  if (h.length > HISTORY_SAMPLES) h.splice(0, h.length - HISTORY_SAMPLES);
}
