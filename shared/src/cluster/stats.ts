import { hostname } from "node:os";
import type { Closable, ClusterBus } from "./bus.js";
import type { ProcessStats } from "./messages.js";

export const STATS_INTERVAL_MS = 1000;

/** What only the process itself knows, read at every sample. */
export interface StatsSource {
  kind: ProcessStats["kind"];
  id: string;
  draining(): boolean;
  natsConnected(): boolean;
  /** Gateway figures or presence partitions; may read async counters. */
  extra(): Promise<Pick<ProcessStats, "gateway" | "partitions">>;
}

/**
 * Publishes the process's stats every `intervalMs` (unref'd, so it never
 * keeps a process alive). A failing sample is skipped, not fatal: the
 * console shows the process as silent if it keeps failing.
 */
export function startStatsPublisher(
  bus: ClusterBus,
  source: StatsSource,
  intervalMs = STATS_INTERVAL_MS,
): Closable {
  const startedAt = Date.now();
  const lag = loopLag();
  const host = hostname();
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const mem = process.memoryUsage();
      const stats: ProcessStats = {
        type: "stats",
        kind: source.kind,
        id: source.id,
        host,
        pid: process.pid,
        startedAt,
        at: Date.now(),
        intervalMs,
        draining: source.draining(),
        natsConnected: source.natsConnected(),
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        ...lag.take(),
        ...(await source.extra()),
      };
      bus.publishStats(stats);
    } catch {
      // Skipped sample; the next tick tries again.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  void tick();
  return {
    close() {
      clearInterval(timer);
      lag.close();
    },
  };
}

const PROBE_MS = 50;

/**
 * Event-loop lag as a probe timer sees it: how late each 50 ms tick fires.
 * (perf_hooks' histogram reports its own resolution as lag on an idle loop,
 * which reads as a problem that is not there.)
 */
function loopLag() {
  let samples: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    samples.push(Math.max(0, now - last - PROBE_MS));
    last = now;
  }, PROBE_MS);
  timer.unref();
  return {
    take(): { loopLagP99Ms: number; loopLagMaxMs: number } {
      const sorted = samples.sort((a, b) => a - b);
      samples = [];
      const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
      return { loopLagP99Ms: round(p99), loopLagMaxMs: round(sorted.at(-1) ?? 0) };
    },
    close: () => clearInterval(timer),
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
