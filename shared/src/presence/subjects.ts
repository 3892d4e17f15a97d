import { encodeToken } from "../subjects.js";

/**
 * NATS names of the gateway ↔ presence protocol. Kept beside the presence
 * code (not in `shared/src/subjects.ts`) so the two can evolve without
 * editing each other's files; both build tokens with the same `encodeToken`.
 *
 *   tdg-presence.p.<n>        requests for partition n (reports, queries)
 *   tdg-presence.hb           gateway heartbeats (every replica listens)
 *   tdg-presence.resync       "send me your full state" from a new owner
 *
 * The root differs from the per-app `tdg.<app>.…` tree so no app id can
 * collide with a presence subject.
 */
const ROOT = "tdg-presence";

/**
 * Apps are spread over this many partitions; one replica owns a partition
 * at a time. Gateways and replicas must agree on it, so it is a protocol
 * constant rather than a setting (changing it needs a full restart).
 */
export const PRESENCE_PARTITIONS = 16;

/**
 * Partition of an app: FNV-1a over the UTF-16 code units. A whole app lives
 * in one partition because a user's status fans out to every channel the
 * user is in, and those channels must all be known to the same owner.
 */
export function partitionOf(appId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < appId.length; i++) {
    h ^= appId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % PRESENCE_PARTITIONS;
}

export function presenceRequestSubject(partition: number): string {
  return `${ROOT}.p.${partition}`;
}

export function presenceHeartbeatSubject(): string {
  return `${ROOT}.hb`;
}

export function presenceResyncSubject(): string {
  return `${ROOT}.resync`;
}

/**
 * The service's own KV bucket (leases and connection records). Separate from
 * the engine's `presence` bucket: its keys are global (leases are not
 * app-scoped) and only the service writes it.
 */
export const PRESENCE_STATE_BUCKET = "tidings_presence-state";

export function leaseKey(partition: number): string {
  return `lease.${partition}`;
}

/** One connection record: `c.<partition>.<app>.<connection>`. */
export function connectionKey(partition: number, appId: string, connectionId: string): string {
  return `c.${partition}.${encodeToken(appId)}.${encodeToken(connectionId)}`;
}

export function connectionKeyFilter(partition: number): string {
  return `c.${partition}.>`;
}

/**
 * The signals of the owner's last written batch: `a.<partition>`. Written
 * with the batch's records, before they are sent, so a new owner can send
 * them again if the old one died in between (receivers drop repeats by
 * version).
 */
export function announcementKey(partition: number): string {
  return `a.${partition}`;
}

/** A user's manual status: `s.<partition>.<app>.<user>`. */
export function statusKey(partition: number, appId: string, userId: string): string {
  return `s.${partition}.${encodeToken(appId)}.${encodeToken(userId)}`;
}

export function statusKeyFilter(partition: number): string {
  return `s.${partition}.>`;
}
