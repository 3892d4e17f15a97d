import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { createInbox } from "@nats-io/nats-core";
import { type StreamState, streamStates } from "../engine/js-streams.js";
import { consoleProbeSubject, consoleStatsSubject } from "../subjects.js";
import {
  decodeProbeAnswer,
  decodeProbeQuery,
  decodeStats,
  type ProbeAnswer,
  type ProbeQuery,
  type ProcessStats,
} from "./messages.js";

export interface Closable {
  close(): void;
}

/** The NATS connection as an operator sees it. */
export interface NatsState {
  connected: boolean;
  server: string;
  serverName?: string | undefined;
  version?: string | undefined;
  rttMs?: number | undefined;
  inMsgs: number;
  outMsgs: number;
}

/**
 * How the processes of a cluster reach an operator console and how a
 * console asks them things. Over NATS core in a cluster; in one process
 * (memory engine) a local bus with the same meaning.
 */
export interface ClusterBus {
  /** Fire and forget; every console listening gets it. */
  publishStats(stats: ProcessStats): void;
  onStats(handler: (stats: ProcessStats) => void): Closable;
  /**
   * Asks every gateway. Resolves with the answers that came within
   * `timeoutMs`, or as soon as `expect` answers came (the gateways the
   * console knows of), so a healthy cluster answers at once and a dead
   * gateway costs only the timeout.
   */
  gather(query: ProbeQuery, o: { timeoutMs: number; expect?: number }): Promise<ProbeAnswer[]>;
  /** Answers `gather` (every gateway serves). */
  serve(handler: (query: ProbeQuery) => ProbeAnswer): Closable;
  /** Null without NATS. */
  nats(): Promise<NatsState | null>;
  /** Null without JetStream (memory engine). */
  streams(appIds: readonly string[]): Promise<StreamState[] | null>;
}

/** One process, no NATS: stats and questions stay in memory. */
export function localBus(): ClusterBus {
  const statsHandlers = new Set<(s: ProcessStats) => void>();
  const servers = new Set<(q: ProbeQuery) => ProbeAnswer>();
  return {
    publishStats(stats) {
      for (const h of statsHandlers) h(stats);
    },
    onStats(handler) {
      statsHandlers.add(handler);
      return { close: () => statsHandlers.delete(handler) };
    },
    async gather(query) {
      return [...servers].map((s) => s(query));
    },
    serve(handler) {
      servers.add(handler);
      return { close: () => servers.delete(handler) };
    },
    async nats() {
      return null;
    },
    async streams() {
      return null;
    },
  };
}

/** The bus over NATS core, on a connection the caller owns (not closed here). */
export function natsBus(nc: NatsConnection): ClusterBus {
  const enc = new TextEncoder();
  const subs = (sub: Subscription): Closable => ({ close: () => sub.unsubscribe() });
  return {
    publishStats(stats) {
      if (!nc.isClosed()) nc.publish(consoleStatsSubject(), enc.encode(JSON.stringify(stats)));
    },
    onStats(handler) {
      return subs(
        nc.subscribe(consoleStatsSubject(), {
          callback: (err, msg) => {
            if (err) return;
            const s = decodeStats(msg.string());
            if (s) handler(s);
          },
        }),
      );
    },
    gather(query, o) {
      return new Promise((resolve) => {
        const answers: ProbeAnswer[] = [];
        const inbox = createInbox();
        let timer: NodeJS.Timeout | undefined;
        const finish = () => {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve(answers);
        };
        const sub = nc.subscribe(inbox, {
          callback: (err, msg) => {
            if (err) return finish();
            const a = decodeProbeAnswer(msg.string());
            if (a) answers.push(a);
            if (o.expect !== undefined && answers.length >= o.expect) finish();
          },
        });
        timer = setTimeout(finish, o.timeoutMs);
        nc.publish(consoleProbeSubject(), enc.encode(JSON.stringify(query)), { reply: inbox });
      });
    },
    serve(handler) {
      return subs(
        nc.subscribe(consoleProbeSubject(), {
          callback: (err, msg) => {
            if (err || !msg.reply) return;
            const q = decodeProbeQuery(msg.string());
            if (q) msg.respond(enc.encode(JSON.stringify(handler(q))));
          },
        }),
      );
    },
    async nats() {
      const closed = nc.isClosed();
      let rttMs: number | undefined;
      try {
        if (!closed) rttMs = await nc.rtt();
      } catch {
        // Not connected right now: the state says so without a round trip time.
      }
      const stats = nc.stats();
      return {
        connected: !closed && rttMs !== undefined,
        server: nc.getServer(),
        serverName: nc.info?.server_name,
        version: nc.info?.version,
        rttMs,
        inMsgs: stats.inMsgs,
        outMsgs: stats.outMsgs,
      };
    },
    async streams(appIds) {
      return streamStates(nc, appIds);
    },
  };
}
