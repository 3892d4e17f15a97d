/**
 * What the processes of a cluster tell an operator console: each process's
 * stats (published every second on `consoleStatsSubject`), and the
 * questions a console asks every gateway with their answers
 * (`consoleProbeSubject`, scatter-gather). JSON on the wire; one union on
 * `type` each, decoded with a check so a stray message is dropped, not
 * trusted.
 */

export interface AppFigures {
  connections: number;
  channels: number;
  msgsInPerSec?: number | undefined;
  msgsOutPerSec?: number | undefined;
  eventsPerSec?: number | undefined;
}

/** Figures only a gateway has. */
export interface GatewayFigures {
  connections: number;
  /** Channels with at least one local subscriber. */
  channels: number;
  msgsInPerSec: number;
  msgsOutPerSec: number;
  /**
   * Per app: its connections and live channels on this gateway, frames in
   * and out and events published per second (absent from gateways older than them).
   */
  apps: Record<string, AppFigures>;
}

export interface ProcessStats {
  type: "stats";
  kind: "gateway" | "presence";
  /** The gateway id presence knows it by, or the presence replica id. */
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  /** When this sample was taken (ms since the epoch, the sender's clock). */
  at: number;
  /** How often the process publishes: a console calls it silent after a few missed ones. */
  intervalMs: number;
  draining: boolean;
  natsConnected: boolean;
  rssBytes: number;
  heapUsedBytes: number;
  /** Event-loop delay over the last interval, milliseconds (p99 and max). */
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  gateway?: GatewayFigures | undefined;
  /** Presence partitions this replica acts for. */
  partitions?: number | undefined;
}

/** One connection as a gateway describes it to a console. */
export interface ConnectionInfo {
  gatewayId: string;
  appId: string;
  connectionId: string;
  dialect: string;
  userId?: string | undefined;
  remoteAddress: string;
  channels: string[];
  /** Last frame from the client (ms since the epoch). */
  lastSeenAt: number;
}

/** At most this many rows per gateway in one answer, so an answer stays one small message. */
export const PROBE_ROW_LIMIT = 200;

export type ProbeQuery =
  /** Live channels whose name starts with `prefix` (all apps when `appId` is absent). */
  | { type: "channels"; appId?: string | undefined; prefix: string }
  /** Who is subscribed to one channel here. */
  | { type: "channel"; appId: string; channel: string }
  /** A user's connections here (all apps when `appId` is absent). */
  | { type: "user"; appId?: string | undefined; userId: string };

export interface LiveChannel {
  appId: string;
  channel: string;
  /** Local subscribers by dialect. */
  byDialect: Record<string, number>;
}

export type ProbeAnswer =
  | { type: "channels"; gatewayId: string; channels: LiveChannel[]; truncated: boolean }
  | {
      type: "channel";
      gatewayId: string;
      byDialect: Record<string, number>;
      connections: ConnectionInfo[];
      truncated: boolean;
    }
  | { type: "user"; gatewayId: string; connections: ConnectionInfo[]; truncated: boolean };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function decodeStats(text: string): ProcessStats | null {
  try {
    const v: unknown = JSON.parse(text);
    if (!isRecord(v) || v.type !== "stats" || typeof v.id !== "string") return null;
    if (v.kind !== "gateway" && v.kind !== "presence") return null;
    if (typeof v.at !== "number" || typeof v.intervalMs !== "number") return null;
    return v as unknown as ProcessStats;
  } catch {
    return null;
  }
}

export function decodeProbeQuery(text: string): ProbeQuery | null {
  try {
    const v: unknown = JSON.parse(text);
    if (!isRecord(v)) return null;
    const app = v.appId === undefined || typeof v.appId === "string";
    switch (v.type) {
      case "channels":
        return app && typeof v.prefix === "string" ? (v as unknown as ProbeQuery) : null;
      case "channel":
        return typeof v.appId === "string" && typeof v.channel === "string"
          ? (v as unknown as ProbeQuery)
          : null;
      case "user":
        return app && typeof v.userId === "string" ? (v as unknown as ProbeQuery) : null;
      default:
        return null;
    }
  } catch {
    return null;
  }
}

export function decodeProbeAnswer(text: string): ProbeAnswer | null {
  try {
    const v: unknown = JSON.parse(text);
    if (!isRecord(v) || typeof v.gatewayId !== "string") return null;
    if (v.type !== "channels" && v.type !== "channel" && v.type !== "user") return null;
    return v as unknown as ProbeAnswer;
  } catch {
    return null;
  }
}
