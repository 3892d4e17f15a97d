/**
 * The presence service over NATS: partition leases, one `OwnedPartition`
 * per partition held, gateway liveness from heartbeats, and the resync that
 * rebuilds a partition's truth after a takeover.
 */
import { randomUUID } from "node:crypto";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import type { Logger } from "../../../shared/src/log.js";
import { createOrOpenKv } from "../../../shared/src/nats/streams.js";
import { decodeMessage, encodeMessage } from "../../../shared/src/presence/messages.js";
import {
  PRESENCE_PARTITIONS,
  PRESENCE_STATE_BUCKET,
  presenceHeartbeatSubject,
  presenceResyncSubject,
} from "../../../shared/src/presence/subjects.js";
import type { WebhookSink } from "../../../shared/src/webhooks/queue.js";
import { EffectEmitter, type SignalSink } from "./emitter.js";
import { LeaseManager } from "./lease.js";
import { OwnedPartition } from "./partition.js";

export interface PresenceServiceOptions {
  /** Connection for reports, leases and state; the caller keeps ownership (not closed here). */
  nc: NatsConnection;
  /** Where member/count/status/watch signals go (the JetStream engine in production). */
  engine: SignalSink;
  log: Logger;
  /** Gateways heartbeat this often (config `heartbeatMs`); liveness is checked as often. */
  heartbeatMs: number;
  /** A gateway silent this long is dead (config `gatewayTimeoutMs`). */
  gatewayTimeoutMs: number;
  /** A lease not renewed for this long is taken over (default 5000 ms). */
  leaseTtlMs?: number | undefined;
  /** KV replicas of the state bucket (config `natsReplicas`). */
  replicas?: number | undefined;
  replicaId?: string | undefined;
  /** Minimum gap between two subscriber-count signals per channel (default 1000 ms). */
  countIntervalMs?: number | undefined;
  /** Where occupied/vacated and member webhooks of owned partitions go. */
  webhooks?: WebhookSink | undefined;
  /** Whether an app's webhooks take channel_occupied/vacated (default: every app's). */
  occupancyWebhooks?: ((appId: string) => boolean) | undefined;
}

export interface PresenceService {
  readonly replicaId: string;
  /** Partitions this replica currently acts for. */
  owned(): number[];
  /** Releases leases (a standby takes over at once) and stops acting. */
  close(): Promise<void>;
}

/** A gateway that has not answered a resync request is asked again this long after it. */
const RESYNC_AGAIN_MS = 2000;

export async function startPresenceService(o: PresenceServiceOptions): Promise<PresenceService> {
  const replicaId = o.replicaId ?? randomUUID();
  const log = o.log.child({ replica: replicaId });
  const kv = await createOrOpenKv(new Kvm(o.nc), PRESENCE_STATE_BUCKET, {
    history: 1,
    replicas: o.replicas ?? 1,
  });
  const emitter = new EffectEmitter(o.engine, {
    countIntervalMs: o.countIntervalMs,
    log,
    webhooks: o.webhooks,
  });
  /** `asked`: when gateways were last asked for their state (any not synced is asked again). */
  const partitions = new Map<number, { part: OwnedPartition; since: number; asked: number }>();
  const lastSeen = new Map<string, number>();
  /** Gateways we declared dead; one that speaks again is asked for its state. */
  const buried = new Set<string>();
  const startedAt = Date.now();

  const resync = (parts: number[], gatewayId?: string) => {
    if (parts.length === 0) return;
    o.nc.publish(
      presenceResyncSubject(),
      encodeMessage({ type: "resync", partitions: parts, gatewayId }),
    );
  };

  const leases = new LeaseManager({
    kv,
    replicaId,
    partitions: PRESENCE_PARTITIONS,
    ttlMs: o.leaseTtlMs ?? 5000,
    log,
    onAcquire: (p, revision) => {
      const part = new OwnedPartition({
        partition: p,
        epoch: revision,
        nc: o.nc,
        kv,
        emitter,
        log: log.child({ partition: p }),
        occupancyWebhooks: o.occupancyWebhooks,
      });
      // The first ask is the broadcast below, once the KV state is in.
      partitions.set(p, { part, since: Date.now(), asked: Number.POSITIVE_INFINITY });
      log.info({ partition: p }, "presence partition acquired");
      // Ask only once the KV state is in: the answers are diffed against it.
      void part.ready().then(() => {
        const owned = partitions.get(p);
        if (owned?.part === part) owned.asked = Date.now();
        resync([p]);
      });
    },
    onLose: (p) => {
      partitions.get(p)?.part.stop();
      partitions.delete(p);
      log.info({ partition: p }, "presence partition released");
    },
  });

  const hb: Subscription = o.nc.subscribe(presenceHeartbeatSubject(), {
    callback: (err, msg) => {
      if (err) return log.warn({ err }, "heartbeat subscription failed");
      let gatewayId: string;
      try {
        const m = decodeMessage(msg.data);
        if (m.type !== "heartbeat") return;
        gatewayId = m.gatewayId;
      } catch (cause) {
        return log.warn({ err: cause }, "bad heartbeat ignored");
      }
      const now = Date.now();
      lastSeen.set(gatewayId, now);
      if (buried.delete(gatewayId)) {
        log.warn({ gateway: gatewayId }, "gateway declared dead is back; asking for its state");
        resync(leases.owned(), gatewayId);
        return;
      }
      // A gateway that missed the takeover's resync request (it is one core
      // NATS message) is asked again: its plain connections are not in KV.
      const missing: number[] = [];
      for (const [p, owned] of partitions) {
        if (owned.part.hasSynced(gatewayId) || now - owned.asked < RESYNC_AGAIN_MS) continue;
        owned.asked = now;
        missing.push(p);
      }
      resync(missing, gatewayId);
    },
  });

  // Every replica tracks every gateway's heartbeats, so a new owner already
  // knows who is alive; a gateway never heard from gets a full timeout of
  // grace from when this replica started or took the partition.
  const checkEvery = Math.max(50, Math.min(o.heartbeatMs, Math.floor(o.gatewayTimeoutMs / 4)));
  const reaper = setInterval(() => {
    const now = Date.now();
    for (const { part, since } of partitions.values()) {
      for (const gw of part.gateways()) {
        const seen = lastSeen.get(gw) ?? Math.max(startedAt, since);
        if (now - seen <= o.gatewayTimeoutMs) continue;
        log.warn({ gateway: gw, silentMs: now - seen }, "gateway timed out; removing its members");
        buried.add(gw);
        void part.dropGateway(gw);
      }
    }
  }, checkEvery);

  leases.start();
  log.info({ partitions: PRESENCE_PARTITIONS }, "presence service started");

  return {
    replicaId,
    owned: () => leases.owned(),
    close: async () => {
      clearInterval(reaper);
      hb.unsubscribe();
      await leases.stop();
      emitter.close();
    },
  };
}
