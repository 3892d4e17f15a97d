/**
 * Connection-level presence entries (Foony `pres`), the part of the state
 * machine that is not user level: every (channel, connection) entry is
 * announced on its own, with the client id and data it carries. Called only
 * from `PresenceCore`, which owns the connection records and persistence.
 *
 * Setting an entry to what it already is announces nothing. That is what
 * keeps a resync, a KV reload or a report retried across a failover from
 * repeating an `enter` or `update` the channel already saw.
 */
import type { Json, Signal } from "../../../shared/src/model.js";
import type { PresenceEntry } from "../../../shared/src/presence/api.js";
import { NO_ITEMS, type PresenceEntrySnapshot } from "../../../shared/src/presence/messages.js";
import type { AppState } from "./indexes.js";
import type { ConnectionRecord, PresenceEffect } from "./types.js";

/** Sets `conn`'s entry on `e.channel`; true if anything changed. */
export function putEntry(
  app: AppState,
  appId: string,
  conn: ConnectionRecord,
  e: PresenceEntrySnapshot,
  out: PresenceEffect[],
): boolean {
  const entries = conn.present ?? NO_ITEMS;
  const old = entries.find((x) => x.channel === e.channel);
  if (old && old.clientId === e.clientId && sameJson(old.data, e.data)) return false;
  // concat sizes the array exactly; a spread grows it to 17 slots.
  conn.present = (old ? entries.filter((x) => x !== old) : entries).concat(copy(e));
  const byConn = app.present.get(e.channel) ?? new Map();
  app.present.set(e.channel, byConn.set(conn.connectionId, { clientId: e.clientId, data: e.data }));
  out.push(effect(appId, e.channel, old ? "update" : "enter", conn.connectionId, e));
  return true;
}

/**
 * Removes `conn`'s entry on `channel`, announcing `leave` with `data`, or
 * with the entry's last data when `data` is undefined. True if it existed.
 */
export function dropEntry(
  app: AppState,
  appId: string,
  conn: ConnectionRecord,
  channel: string,
  data: Json | undefined,
  out: PresenceEffect[],
): boolean {
  const old = conn.present?.find((x) => x.channel === channel);
  if (!old) return false;
  conn.present = conn.present?.filter((x) => x !== old);
  const byConn = app.present.get(channel);
  byConn?.delete(conn.connectionId);
  if (byConn?.size === 0) app.present.delete(channel);
  const last = { clientId: old.clientId, data: data ?? old.data };
  out.push(effect(appId, channel, "leave", conn.connectionId, last));
  return true;
}

/** Every entry of the channel, in the order they entered (a Map keeps insertion order). */
export function entriesOf(app: AppState | undefined, channel: string): PresenceEntry[] {
  const byConn = app?.present.get(channel);
  if (!byConn) return [];
  return [...byConn].map(([connectionId, e]) => ({
    clientId: e.clientId,
    connectionId,
    ...(e.data === undefined ? {} : { data: e.data }),
  }));
}

function effect(
  appId: string,
  channel: string,
  action: "enter" | "update" | "leave",
  connectionId: string,
  e: { clientId: string; data?: Json | undefined },
): PresenceEffect {
  const signal: Signal = { kind: "entry", action, clientId: e.clientId, connectionId };
  if (e.data !== undefined) signal.data = e.data;
  return { to: "channel", appId, channel, signal };
}

function copy(e: PresenceEntrySnapshot): PresenceEntrySnapshot {
  return e.data === undefined
    ? { channel: e.channel, clientId: e.clientId }
    : { channel: e.channel, clientId: e.clientId, data: e.data };
}

/**
 * Data arrives as parsed JSON from one client, so the same value serializes
 * the same way; a reordered object at worst costs one extra `update`.
 */
function sameJson(a: Json | undefined, b: Json | undefined): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
