/**
 * One partition this replica owns: the state machine for its apps, its
 * records in KV, and the subscription gateways send reports to.
 *
 * Messages are handled strictly one after another (a promise chain), in
 * arrival order, so a gateway's reports apply in the order it sent them.
 * Each batch: apply to the core → persist changed records → reply → emit
 * signals. Persisting before announcing means a replica that dies mid-batch
 * leaves KV no further behind than what it announced; the next owner diffs
 * KV against the gateways' resync and announces only the difference.
 */
import type { KV } from "@nats-io/kv";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import type { Logger } from "../../../shared/src/log.js";
import type { UserStatus } from "../../../shared/src/model.js";
import {
  type ConnectionSnapshot,
  decodeMessage,
  encodeMessage,
  type PresenceMessage,
  type PresenceReply,
  type PresenceReport,
  type ReportResult,
} from "../../../shared/src/presence/messages.js";
import {
  announcementKey,
  connectionKey,
  connectionKeyFilter,
  partitionOf,
  presenceRequestSubject,
  presenceResyncSubject,
  statusKey,
  statusKeyFilter,
} from "../../../shared/src/presence/subjects.js";
import { type ConnectionRecord, PresenceCore, type PresenceEffect } from "./core.js";
import type { EffectEmitter } from "./emitter.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class PersistError extends Error {
  override name = "PersistError";
}

export interface PartitionOptions {
  partition: number;
  /** Versions the signals of this ownership: the lease revision it was taken with. */
  epoch: number;
  nc: NatsConnection;
  kv: KV;
  emitter: EffectEmitter;
  log: Logger;
  /**
   * Whether the app's webhooks take channel_occupied/vacated: then even a
   * connection with nothing but plain subscriptions is persisted (default: every app).
   */
  occupancyWebhooks?: ((appId: string) => boolean) | undefined;
}

/**
 * A connection a takeover needs nothing of from KV: no user, watchlist,
 * membership or presence entry, only plain subscriptions. The gateways'
 * resync brings those back, and all they can announce anew is a count (the
 * latest value, harmless to repeat) and, where webhooks want it, occupancy:
 * only then is such a record written. Not writing them spares a JetStream
 * write per subscribe in the common case (a channel per user, no webhooks).
 */
export function isPlain(rec: ConnectionRecord): boolean {
  return (
    !rec.opened &&
    rec.userId === undefined &&
    rec.watchlist.length === 0 &&
    (rec.present?.length ?? 0) === 0 &&
    rec.subs.every((s) => !s.member && s.userId === undefined)
  );
}

export class OwnedPartition {
  private readonly core: PresenceCore;
  private chain: Promise<void>;
  private sub: Subscription | undefined;
  private stopped = false;
  /** Sync parts received so far, per gateway, until the part marked `done`. */
  private readonly syncs = new Map<
    string,
    { id: string; next: number; conns: ConnectionSnapshot[] }
  >();
  /** Changed keys not yet written (kept across a failed write, retried with the next batch). */
  private readonly unsaved = new Set<string>();
  /** Connection keys in KV as far as this owner knows (loaded, or written since). */
  private readonly stored = new Set<string>();
  /** Gateways whose full sync this owner applied: the others may hold plain connections it lacks. */
  private readonly synced = new Set<string>();

  constructor(private readonly o: PartitionOptions) {
    this.core = new PresenceCore(true, o.epoch);
    this.chain = this.loadUntilDone();
    this.sub = o.nc.subscribe(presenceRequestSubject(o.partition), {
      callback: (err, msg) => {
        if (err) o.log.warn({ err }, "presence request subscription failed");
        else this.enqueue(() => this.handle(msg));
      },
    });
  }

  /** Resolves once the persisted state is loaded (requests queue behind it). */
  ready(): Promise<void> {
    return this.chain;
  }

  gateways(): Set<string> {
    return this.core.gateways();
  }

  /** Whether a full sync of this gateway was applied since this owner took the partition. */
  hasSynced(gatewayId: string): boolean {
    return this.synced.has(gatewayId);
  }

  private keepsPlain(appId: string): boolean {
    return this.o.occupancyWebhooks?.(appId) ?? true;
  }

  /** Removes everything a dead gateway had here, announcing the leaves. */
  dropGateway(gatewayId: string): Promise<void> {
    return this.enqueue(async () => {
      const effects = this.core.dropGateway(gatewayId);
      this.syncs.delete(gatewayId);
      await this.persist(effects).catch((err: unknown) =>
        this.o.log.warn({ err }, "persist after gateway loss failed"),
      );
      this.emit(effects);
    });
  }

  /** Stops acting at once: no more replies, writes or signals from this replica. */
  stop(): void {
    this.stopped = true;
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    const next = this.chain.then(() => (this.stopped ? undefined : job()));
    this.chain = next.catch((err: unknown) =>
      this.o.log.error({ err }, "presence partition job failed"),
    );
    return this.chain;
  }

  /** Requests wait behind the load; a KV hiccup delays them instead of losing the partition's state. */
  private async loadUntilDone(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.load();
        return;
      } catch (err) {
        this.o.log.warn(
          // The logger already carries the partition; a KV hiccup needs no stack.
          { reason: err instanceof Error ? err.message : String(err), attempt },
          "presence partition load failed",
        );
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempt)));
      }
    }
  }

  private async load(): Promise<void> {
    const p = this.o.partition;
    const records = await this.readAll<ConnectionRecord>(connectionKeyFilter(p), this.stored);
    const statuses = await this.readAll<{ appId: string; userId: string; status: UserStatus }>(
      statusKeyFilter(p),
    );
    const announced = await this.read<{ effects: PresenceEffect[] }>(announcementKey(p));
    this.core.load(records, statuses);
    // The previous owner may have died between writing its last batch and
    // sending its signals: send them again, with their own versions, before
    // anything of ours (receivers drop the ones they already had).
    if (announced && !this.stopped) this.o.emitter.emit(announced.effects);
    const apps = new Set(records.map((r) => r.appId));
    for (const appId of apps) {
      // Where plain connections are not in KV, the loaded counts are short of
      // what was announced: left unseeded, the first count after the resync
      // goes out whatever it is (a repeat of the latest value at worst).
      if (!this.keepsPlain(appId)) continue;
      for (const ch of this.core.channels(appId)) {
        this.o.emitter.seedCount(appId, ch.channel, ch.subscriptionCount);
      }
    }
    this.o.log.info({ connections: records.length }, "presence partition loaded");
  }

  private async handle(msg: Msg): Promise<void> {
    let m: PresenceMessage;
    try {
      m = decodeMessage(msg.data);
    } catch (err) {
      this.respond(msg, { type: "error", code: "invalid", message: String(err) });
      return;
    }
    if ("appId" in m && partitionOf(m.appId) !== this.o.partition) {
      this.respond(msg, {
        type: "error",
        code: "invalid",
        message: "app is not in this partition",
      });
      return;
    }
    switch (m.type) {
      case "batch":
        return this.batch(msg, m.gatewayId, m.reports);
      case "members":
        return this.respond(msg, {
          type: "members",
          members: this.core.members(m.appId, m.channel),
        });
      case "count":
        return this.respond(msg, {
          type: "count",
          count: this.core.subscriberCount(m.appId, m.channel),
        });
      case "present":
        return this.respond(msg, {
          type: "present",
          entries: this.core.present(m.appId, m.channel),
          version: this.core.version(),
        });
      case "channels":
        return this.respond(msg, {
          type: "channels",
          channels: this.core.channels(m.appId, m.prefix),
        });
      case "user_status":
        return this.respond(msg, {
          type: "user_status",
          status: this.core.status(m.appId, m.userId),
        });
      default:
        this.respond(msg, {
          type: "error",
          code: "invalid",
          message: `${m.type} must be sent in a batch`,
        });
    }
  }

  private async batch(
    msg: Msg,
    gatewayId: string,
    reports: Extract<PresenceMessage, { type: "batch" }>["reports"],
  ) {
    const foreign = (appId: string) => partitionOf(appId) !== this.o.partition;
    const misrouted = reports.some((r) =>
      r.type === "sync" ? r.connections.some((c) => foreign(c.appId)) : foreign(r.appId),
    );
    if (misrouted) {
      this.respond(msg, {
        type: "error",
        code: "invalid",
        message: "app is not in this partition",
      });
      return;
    }
    const effects: PresenceEffect[] = [];
    const results: ReportResult[] = [];
    for (const r of reports) {
      switch (r.type) {
        case "join": {
          const { outcome, effects: e } = this.core.join(gatewayId, r);
          effects.push(...e);
          results.push(outcome);
          continue;
        }
        case "leave":
          effects.push(...this.core.leave(r.appId, r.channel, r.connectionId));
          break;
        case "open":
          effects.push(
            ...this.core.open(gatewayId, r.appId, r.connectionId, r.userId, r.watchlist),
          );
          break;
        case "close":
          effects.push(...this.core.close(r.appId, r.connectionId));
          break;
        case "status":
          effects.push(...this.core.setStatus(r.appId, r.userId, r.status));
          break;
        case "presence":
          effects.push(...this.core.setPresence(gatewayId, r));
          break;
        case "sync":
          effects.push(...this.syncPart(gatewayId, r));
          break;
      }
      results.push({ ok: true });
    }
    try {
      await this.persist(effects);
    } catch (err) {
      // The core already moved on (and will not repeat the effects when the
      // gateway retries), so announce now; the unsaved keys go with the next write.
      this.emit(effects);
      this.respond(msg, { type: "error", code: "unavailable", message: String(err) });
      return;
    }
    this.respond(msg, { type: "batch_result", results });
    this.emit(effects);
  }

  private syncPart(
    gatewayId: string,
    r: Extract<PresenceReport, { type: "sync" }>,
  ): PresenceEffect[] {
    const prev = this.syncs.get(gatewayId);
    const acc = r.part === 0 ? { id: r.syncId, next: 0, conns: [] } : prev;
    if (!acc || acc.id !== r.syncId || acc.next !== r.part) {
      // Parts went to a previous owner: applying the rest would drop their connections.
      this.syncs.delete(gatewayId);
      if (r.done) this.requestResync(gatewayId);
      return [];
    }
    acc.conns.push(...r.connections);
    acc.next++;
    if (!r.done) {
      this.syncs.set(gatewayId, acc);
      return [];
    }
    this.syncs.delete(gatewayId);
    this.synced.add(gatewayId);
    // Every app of this gateway in this partition is covered by the snapshot.
    const effects = this.core.syncGateway(
      gatewayId,
      acc.conns,
      (appId) => partitionOf(appId) === this.o.partition,
    );
    // Unseeded counts (plain connections are not in KV): each channel this
    // gateway holds gets its count announced, even one the sync left as loaded.
    const counted = new Set<string>();
    for (const c of acc.conns) {
      if (this.keepsPlain(c.appId)) continue;
      for (const s of c.subs) {
        const k = `${c.appId}\0${s.channel}`;
        if (counted.has(k)) continue;
        counted.add(k);
        const count = this.core.subscriberCount(c.appId, s.channel);
        effects.push({ to: "count", appId: c.appId, channel: s.channel, count });
      }
    }
    return effects;
  }

  private requestResync(gatewayId: string): void {
    const msg = { type: "resync" as const, partitions: [this.o.partition], gatewayId };
    this.o.nc.publish(presenceResyncSubject(), encodeMessage(msg));
  }

  /** Writes the changed records and, with them, the signals `effects` is about to send. */
  private async persist(effects: readonly PresenceEffect[]): Promise<void> {
    const p = this.o.partition;
    const dirty = this.core.takeDirty();
    for (const c of dirty.connections) this.unsaved.add(`c\0${c.appId}\0${c.connectionId}`);
    for (const s of dirty.statuses) this.unsaved.add(`s\0${s.appId}\0${s.userId}`);
    // Only versioned signals: receivers can tell a repeat of those from news.
    const signals = effects.filter(
      (e) => e.to === "channel" && (e.signal.kind === "member" || e.signal.kind === "entry"),
    );
    if (this.unsaved.size === 0 && signals.length === 0) return;
    const keys = [...this.unsaved];
    const announce =
      signals.length === 0
        ? []
        : [this.o.kv.put(announcementKey(p), encoder.encode(JSON.stringify({ effects: signals })))];
    const writes = keys.map(async (k) => {
      const [kind, appId = "", id = ""] = k.split("\0");
      if (kind === "c") {
        const rec = this.core.connection(appId, id);
        const key = connectionKey(p, appId, id);
        if (rec && (!isPlain(rec) || this.keepsPlain(appId))) {
          // Before the put: one that times out may still have been stored.
          this.stored.add(key);
          await this.o.kv.put(key, encoder.encode(JSON.stringify(rec)));
        } else if (this.stored.has(key)) {
          // Gone, or plain now: a takeover must not find what it no longer is.
          await this.o.kv.delete(key);
          this.stored.delete(key);
        }
      } else {
        const status = this.core.manualStatus(appId, id);
        const key = statusKey(p, appId, id);
        const value = { appId, userId: id, status };
        await (status
          ? this.o.kv.put(key, encoder.encode(JSON.stringify(value)))
          : this.o.kv.delete(key));
      }
      this.unsaved.delete(k);
    });
    const failed = (await Promise.allSettled([...writes, ...announce])).find(
      (r) => r.status === "rejected",
    );
    if (failed)
      throw new PersistError(`presence state write failed (partition ${p})`, {
        cause: failed.reason,
      });
  }

  private emit(effects: PresenceEffect[]): void {
    if (!this.stopped) this.o.emitter.emit(effects);
  }

  private respond(msg: Msg, reply: PresenceReply): void {
    if (this.stopped || !msg.reply) return;
    msg.respond(encodeMessage(reply));
  }

  /** Reads every live value under `filter`, a bounded number of gets at a time. */
  private async readAll<T>(filter: string, found?: Set<string>): Promise<T[]> {
    const keys: string[] = [];
    for await (const k of await this.o.kv.keys(filter)) keys.push(k);
    for (const k of keys) found?.add(k);
    const out: T[] = [];
    for (let i = 0; i < keys.length; i += 64) {
      const values = await Promise.all(keys.slice(i, i + 64).map((k) => this.read<T>(k)));
      for (const v of values) if (v !== null) out.push(v);
    }
    return out;
  }

  private async read<T>(key: string): Promise<T | null> {
    const e = await this.o.kv.get(key);
    if (e?.operation !== "PUT") return null;
    return JSON.parse(decoder.decode(e.value)) as T;
  }
}
