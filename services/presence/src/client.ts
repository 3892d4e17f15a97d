/**
 * `PresenceApi` for a gateway in the clustered deployment. It keeps the
 * gateway's own truth (its connections and their subscriptions), reports
 * every change in order to the partition owner of the app, heartbeats, and
 * answers a new owner's resync request with that truth.
 */
import { randomUUID } from "node:crypto";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import type { Logger } from "../../../shared/src/log.js";
import type { UserStatus } from "../../../shared/src/model.js";
import type {
  ChannelInfo,
  ChannelSubscription,
  Member,
  PresenceApi,
  PresenceChange,
  PresenceEntry,
  PresenceSet,
  SubscribeOutcome,
} from "../../../shared/src/presence/api.js";
import {
  type ConnectionSnapshot,
  decodeMessage,
  encodeMessage,
  NO_ITEMS,
  type PresenceQuery,
  type PresenceReply,
} from "../../../shared/src/presence/messages.js";
import {
  PRESENCE_PARTITIONS,
  partitionOf,
  presenceHeartbeatSubject,
  presenceResyncSubject,
} from "../../../shared/src/presence/subjects.js";
import {
  PresenceRequestError,
  ReportQueue,
  type RequestPolicy,
  requestWithRetry,
} from "./report-queue.js";

export { PresenceRequestError } from "./report-queue.js";

export interface NatsPresenceClientOptions {
  /** The gateway's connection; the caller keeps ownership (not closed here). */
  nc: NatsConnection;
  /** Config `heartbeatMs`: must match what the service expects. */
  heartbeatMs: number;
  /** Unique per gateway process; a restarted gateway is a new gateway. */
  gatewayId?: string | undefined;
  /** One attempt (default 2000 ms). */
  requestTimeoutMs?: number | undefined;
  /** How long a report or query is retried across failovers (default 20000 ms). */
  retryForMs?: number | undefined;
  log?: Logger | undefined;
  /** How long `close()` waits for queued reports (default 5000 ms). */
  closeTimeoutMs?: number | undefined;
}

interface LocalConn extends ConnectionSnapshot {
  /**
   * Subscribes awaiting the owner's answer: channel → token, dropped by a
   * racing unsubscribe. Undefined while none waits (most of a connection's life).
   */
  pending: Map<string, symbol> | undefined;
}

function dropPending(conn: LocalConn, channel: string): void {
  conn.pending?.delete(channel);
  if (conn.pending?.size === 0) conn.pending = undefined;
}

export class NatsPresenceClient implements PresenceApi {
  readonly gatewayId: string;
  private readonly nc: NatsConnection;
  private readonly policy: RequestPolicy;
  private readonly conns = new Map<string, LocalConn>();
  private readonly queues = new Map<number, ReportQueue>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly resyncSub: Subscription;
  private closed = false;

  constructor(private readonly o: NatsPresenceClientOptions) {
    this.nc = o.nc;
    this.gatewayId = o.gatewayId ?? randomUUID();
    this.policy = {
      requestTimeoutMs: o.requestTimeoutMs ?? 2000,
      retryForMs: o.retryForMs ?? 20_000,
    };
    this.heartbeat = setInterval(() => this.beat(), o.heartbeatMs);
    this.beat();
    this.resyncSub = this.nc.subscribe(presenceResyncSubject(), {
      callback: (err, msg) => {
        if (err) return this.o.log?.warn({ err }, "presence resync subscription failed");
        try {
          const m = decodeMessage(msg.data);
          if (m.type !== "resync" || (m.gatewayId !== undefined && m.gatewayId !== this.gatewayId))
            return;
          for (const p of m.partitions) {
            if (p < 0 || p >= PRESENCE_PARTITIONS) continue;
            const q = this.queue(p);
            // Ahead of the sync: whatever waits on the old owner goes to the new one now.
            q.nudge.fire();
            q.sync();
          }
        } catch (cause) {
          this.o.log?.warn({ err: cause }, "bad presence resync request ignored");
        }
      },
    });
  }

  async subscribe(sub: ChannelSubscription): Promise<SubscribeOutcome> {
    const conn = this.conn(sub.appId, sub.connectionId);
    const token = Symbol(sub.channel);
    conn.pending ??= new Map();
    conn.pending.set(sub.channel, token);
    const sending = this.queue(partitionOf(sub.appId)).send(
      {
        type: "join",
        appId: sub.appId,
        channel: sub.channel,
        connectionId: sub.connectionId,
        userId: sub.userId,
        info: sub.info,
        member: sub.member,
        maxMembers: sub.maxMembers,
      },
      (r) => {
        // Runs before any later sync is built, so a sync never misses an accepted join.
        if (conn.pending?.get(sub.channel) !== token) return;
        dropPending(conn, sub.channel);
        if (!r.ok || this.conns.get(key(sub.appId, sub.connectionId)) !== conn) return;
        // concat sizes the array exactly; a push grows it to 17 slots.
        conn.subs = conn.subs
          .filter((s) => s.channel !== sub.channel)
          .concat({ channel: sub.channel, userId: sub.userId, info: sub.info, member: sub.member });
      },
    );
    // A rejected join (no owner in time) leaves nothing behind to mistake for a pending one.
    const result = await sending.finally(() => {
      if (conn.pending?.get(sub.channel) === token) dropPending(conn, sub.channel);
    });
    if ("members" in result || !result.ok) return result;
    throw new PresenceRequestError("join answered without an outcome");
  }

  async unsubscribe(appId: string, channel: string, connectionId: string): Promise<void> {
    const conn = this.conns.get(key(appId, connectionId));
    if (conn) {
      dropPending(conn, channel);
      conn.subs = conn.subs.filter((s) => s.channel !== channel);
    }
    await this.queue(partitionOf(appId)).send({ type: "leave", appId, channel, connectionId });
  }

  async connectionOpened(
    appId: string,
    connectionId: string,
    userId: string,
    watchlist: readonly string[],
  ): Promise<void> {
    const conn = this.conn(appId, connectionId);
    conn.opened = true;
    conn.userId = userId;
    conn.watchlist = [...watchlist];
    await this.queue(partitionOf(appId)).send({
      type: "open",
      appId,
      connectionId,
      userId,
      watchlist: [...watchlist],
    });
  }

  /**
   * The gateway's own truth changes at once (a sync sent from now on carries
   * it), then the report follows in order; the owner ignores a report that
   * changes nothing, so the sync and the report never announce it twice.
   */
  async setPresence(change: PresenceChange): Promise<void> {
    const { appId, channel, connectionId } = change;
    const k = key(appId, connectionId);
    if (change.action === "leave") {
      const conn = this.conns.get(k);
      if (conn) conn.present = conn.present?.filter((e) => e.channel !== channel);
    } else {
      const conn = this.conn(appId, connectionId);
      const entry = { channel, clientId: change.clientId, data: change.data };
      conn.present = (conn.present ?? NO_ITEMS).filter((e) => e.channel !== channel).concat(entry);
    }
    await this.queue(partitionOf(appId)).send({ type: "presence", ...change });
  }

  async present(appId: string, channel: string): Promise<PresenceEntry[]> {
    return (await this.presenceSet(appId, channel)).entries;
  }

  async presenceSet(appId: string, channel: string): Promise<PresenceSet> {
    const r = await this.query({ type: "present", appId, channel });
    return r.type === "present" ? { entries: r.entries, version: r.version } : unexpected(r);
  }

  async connectionClosed(appId: string, connectionId: string): Promise<void> {
    this.conns.delete(key(appId, connectionId));
    await this.queue(partitionOf(appId)).send({ type: "close", appId, connectionId });
  }

  async setStatus(appId: string, userId: string, status: UserStatus): Promise<void> {
    await this.queue(partitionOf(appId)).send({ type: "status", appId, userId, status });
  }

  async status(appId: string, userId: string): Promise<UserStatus> {
    const r = await this.query({ type: "user_status", appId, userId });
    return r.type === "user_status" ? r.status : unexpected(r);
  }

  async members(appId: string, channel: string): Promise<Member[]> {
    const r = await this.query({ type: "members", appId, channel });
    return r.type === "members" ? r.members : unexpected(r);
  }

  async subscriberCount(appId: string, channel: string): Promise<number> {
    const r = await this.query({ type: "count", appId, channel });
    return r.type === "count" ? r.count : unexpected(r);
  }

  async channels(appId: string, prefix?: string): Promise<ChannelInfo[]> {
    const r = await this.query({ type: "channels", appId, prefix });
    return r.type === "channels" ? r.channels : unexpected(r);
  }

  /**
   * Waits for queued reports to be sent, then stops heartbeating. The
   * service removes whatever this gateway still had after `gatewayTimeoutMs`;
   * report `connectionClosed` for each connection first for an immediate leave.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Without an owner the queues would retry for the whole window; a
    // shutting-down gateway waits a bounded time (the reaper covers the rest).
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((r) => {
      timer = setTimeout(r, this.o.closeTimeoutMs ?? 5000);
    });
    await Promise.race([Promise.all([...this.queues.values()].map((q) => q.drained())), limit]);
    clearTimeout(timer);
    clearInterval(this.heartbeat);
    this.resyncSub.unsubscribe();
  }

  private beat(): void {
    if (this.nc.isClosed()) return;
    this.nc.publish(
      presenceHeartbeatSubject(),
      encodeMessage({ type: "heartbeat", gatewayId: this.gatewayId }),
    );
  }

  private query(q: PresenceQuery): Promise<PresenceReply> {
    const p = partitionOf(q.appId);
    return requestWithRetry(this.nc, p, q, this.policy, this.queue(p).nudge);
  }

  /** The oldest unacknowledged report's wait over all partitions, in seconds. */
  reportLagSeconds(): number {
    let ms = 0;
    const now = Date.now();
    for (const q of this.queues.values()) ms = Math.max(ms, q.lagMs(now));
    return ms / 1000;
  }

  private queue(p: number): ReportQueue {
    let q = this.queues.get(p);
    if (!q) {
      q = new ReportQueue(this.nc, p, this.gatewayId, this.policy, () => this.snapshot(p));
      this.queues.set(p, q);
    }
    return q;
  }

  private snapshot(p: number): ConnectionSnapshot[] {
    const out: ConnectionSnapshot[] = [];
    for (const c of this.conns.values()) {
      if (partitionOf(c.appId) !== p) continue;
      const { pending: _, ...snap } = c;
      out.push(structuredClone(snap));
    }
    return out;
  }

  private conn(appId: string, connectionId: string): LocalConn {
    const k = key(appId, connectionId);
    let c = this.conns.get(k);
    if (!c) {
      c = {
        appId,
        connectionId,
        opened: false,
        watchlist: NO_ITEMS,
        subs: NO_ITEMS,
        present: undefined,
        pending: undefined,
      };
      this.conns.set(k, c);
    }
    return c;
  }
}

function key(appId: string, connectionId: string): string {
  return `${appId}\0${connectionId}`;
}

function unexpected(r: PresenceReply): never {
  throw new PresenceRequestError(`unexpected presence reply ${r.type}`);
}
