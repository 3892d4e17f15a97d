/**
 * Herald frames ⇄ commands and events. Pure: no I/O, no clock, no engine.
 * Frames are JSON text `{type, ref?, payload}`.
 */

import { isValidChannel } from "../../../../../shared/src/channels.js";
import type { Delivery, Json, StoredEvent, UserStatus } from "../../../../../shared/src/model.js";

export type Ref = string | number | undefined;

export type Command =
  | { type: "subscribe"; stream_id: string; last_seq?: number; delivery?: "at_least_once" }
  | { type: "unsubscribe"; stream_id: string }
  | {
      type: "event.publish";
      stream_id: string;
      event_type: string;
      body: Json;
      meta?: { [k: string]: Json };
    }
  | { type: "event.trigger"; stream_id: string; event_type: string; body: Json }
  | {
      type: "events.fetch";
      stream_id: string;
      after_seq?: number;
      before_seq?: number;
      limit: number;
    }
  | { type: "cursor.update"; stream_id: string; seq: number }
  | { type: "presence.set"; status: UserStatus }
  | { type: "typing.start" | "typing.stop"; stream_id: string }
  | { type: "reaction.add" | "reaction.remove"; stream_id: string; event_id: string; emoji: string }
  | { type: "event.ack"; stream_id: string; event_id: string }
  | { type: "ping" };

export type Decoded =
  | { ok: true; ref: Ref; command: Command }
  | { ok: false; ref: Ref; code: "invalid_payload"; message: string };

const STATUSES = new Set(["online", "away", "dnd", "offline"]);
export const FETCH_DEFAULT = 50;
export const FETCH_MAX = 1000;
/** A ref is part of a publish's idempotency key (dedupe.ts), remembered for the dedupe window. */
export const REF_MAX = 200;

class Invalid extends Error {}

export function decode(text: string): Decoded {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return {
      ok: false,
      ref: undefined,
      code: "invalid_payload",
      message: "frame is not valid JSON",
    };
  }
  if (typeof frame !== "object" || frame === null || Array.isArray(frame)) {
    return {
      ok: false,
      ref: undefined,
      code: "invalid_payload",
      message: "frame must be a JSON object",
    };
  }
  const f = frame as Record<string, unknown>;
  const long = typeof f.ref === "string" && f.ref.length > REF_MAX;
  const ref = (typeof f.ref === "string" && !long) || typeof f.ref === "number" ? f.ref : undefined;
  try {
    if (long) throw new Invalid(`ref must be at most ${REF_MAX} characters`);
    if (f.ref !== undefined && ref === undefined)
      throw new Invalid("ref must be a string or number");
    if (typeof f.type !== "string") throw new Invalid("type must be a string");
    const p = f.payload ?? {};
    if (typeof p !== "object" || p === null || Array.isArray(p))
      throw new Invalid("payload must be an object");
    return { ok: true, ref, command: command(f.type, p as Record<string, unknown>) };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return { ok: false, ref, code: "invalid_payload", message: err.message };
  }
}

function command(type: string, p: Record<string, unknown>): Command {
  switch (type) {
    case "subscribe": {
      const c: Command = { type, stream_id: stream(p) };
      if (p.last_seq !== undefined) c.last_seq = seqField(p, "last_seq", true);
      if (p.delivery !== undefined) {
        if (p.delivery !== "at_least_once") throw new Invalid('delivery must be "at_least_once"');
        c.delivery = "at_least_once";
      }
      return c;
    }
    case "unsubscribe":
    case "typing.start":
    case "typing.stop":
      return { type, stream_id: stream(p) };
    case "event.publish": {
      const c: Command = { type, stream_id: stream(p), event_type: eventType(p), body: body(p) };
      if (p.meta !== undefined) {
        if (typeof p.meta !== "object" || p.meta === null || Array.isArray(p.meta)) {
          throw new Invalid("meta must be an object");
        }
        c.meta = p.meta as { [k: string]: Json };
      }
      return c;
    }
    case "event.trigger":
      return { type, stream_id: stream(p), event_type: eventType(p), body: body(p) };
    case "events.fetch": {
      const c: Command = { type, stream_id: stream(p), limit: FETCH_DEFAULT };
      if (p.after_seq !== undefined) c.after_seq = seqField(p, "after_seq", true);
      if (p.before_seq !== undefined) c.before_seq = seqField(p, "before_seq", false);
      if (p.limit !== undefined) {
        if (
          !Number.isInteger(p.limit) ||
          (p.limit as number) < 1 ||
          (p.limit as number) > FETCH_MAX
        ) {
          throw new Invalid(`limit must be an integer from 1 to ${FETCH_MAX}`);
        }
        c.limit = p.limit as number;
      }
      return c;
    }
    case "cursor.update":
      return { type, stream_id: stream(p), seq: seqField(p, "seq", true) };
    case "presence.set":
      if (typeof p.status !== "string" || !STATUSES.has(p.status)) {
        throw new Invalid("status must be one of online, away, dnd, offline");
      }
      return { type, status: p.status as UserStatus };
    case "reaction.add":
    case "reaction.remove":
      return {
        type,
        stream_id: stream(p),
        event_id: str(p, "event_id", 100),
        emoji: str(p, "emoji", 64),
      };
    case "event.ack":
      return { type, stream_id: stream(p), event_id: str(p, "event_id", 100) };
    case "ping":
      return { type };
    default:
      throw new Invalid(`unknown type ${JSON.stringify(type).slice(0, 80)}`);
  }
}

function stream(p: Record<string, unknown>): string {
  if (!isValidChannel(p.stream_id)) {
    throw new Invalid("stream_id must be 1-200 characters of A-Z a-z 0-9 _ - = @ , . ; #");
  }
  return p.stream_id;
}

function eventType(p: Record<string, unknown>): string {
  return str(p, "type", 200);
}

function str(p: Record<string, unknown>, name: string, max: number): string {
  const v = p[name];
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new Invalid(`${name} must be a string of 1-${max} characters`);
  }
  return v;
}

function body(p: Record<string, unknown>): Json {
  if (!("body" in p)) throw new Invalid("body is required");
  return p.body as Json;
}

function seqField(p: Record<string, unknown>, name: string, zeroOk: boolean): number {
  const v = p[name];
  if (!Number.isSafeInteger(v) || (v as number) < (zeroOk ? 0 : 1)) {
    throw new Invalid(`${name} must be a ${zeroOk ? "non-negative" : "positive"} integer`);
  }
  return v as number;
}

// ---- server → client ----

function frame(type: string, payload: unknown, ref?: Ref): string {
  return JSON.stringify(ref === undefined ? { type, payload } : { type, ref, payload });
}

export const encode = {
  authOk: (p: { connection_id: string; user_id: string; streams: string[]; expires_at: number }) =>
    frame("auth_ok", p),
  authError: (message: string) => frame("auth_error", { code: "auth_failed", message }),
  error: (ref: Ref, code: string, message: string) => frame("error", { code, message }, ref),
  pong: (ref: Ref) => frame("pong", {}, ref),
  tokenExpiring: (expiresAt: number) => frame("system.token_expiring", { expires_at: expiresAt }),
  subscribed: (
    ref: Ref,
    p: {
      stream_id: string;
      seq: number;
      subscriber_count: number;
      cursor?: number | undefined;
      members?: { user_id: string; status: string }[] | undefined;
      replay?: "truncated" | undefined;
    },
  ) => frame("subscribed", p, ref),
  eventAck: (ref: Ref, id: string, seq: number) => frame("event.ack", { event_id: id, seq }, ref),
  eventsBatch: (ref: Ref, streamId: string, events: StoredEvent[], hasMore: boolean) =>
    frame(
      "events.batch",
      { stream_id: streamId, events: events.map(eventPayload), has_more: hasMore },
      ref,
    ),
  eventNew: (e: StoredEvent) => frame("event.new", eventPayload(e)),
};

export function eventPayload(e: StoredEvent) {
  return {
    event_id: e.id,
    stream_id: e.channel,
    seq: e.seq,
    type: e.name,
    body: e.data,
    meta: e.meta ?? {},
    user_id: e.userId,
    created_at: new Date(e.time).toISOString(),
  };
}

/** One frame per delivery on a stream; the same bytes go to every Herald subscriber. */
export function encodeDelivery(streamId: string, d: Delivery): string | null {
  if (d.type === "event") return encode.eventNew(d.event);
  const s = d.signal;
  switch (s.kind) {
    case "transient":
      return frame("event.new", {
        stream_id: streamId,
        type: s.name,
        body: s.data,
        user_id: s.userId,
        ephemeral: true,
      });
    case "typing":
      return frame("typing", { stream_id: streamId, user_id: s.userId, active: s.active });
    case "cursor":
      return frame("cursor.moved", { stream_id: streamId, user_id: s.userId, seq: s.seq });
    case "reaction":
      return frame("reaction.changed", {
        stream_id: streamId,
        event_id: s.eventId,
        emoji: s.emoji,
        user_id: s.userId,
        action: s.action,
        count: s.count,
      });
    case "member":
      return frame(`member.${s.action}`, { stream_id: streamId, user_id: s.userId });
    case "subscriber_count":
      return frame("stream.subscriber_count", { stream_id: streamId, count: s.count });
    case "status":
      return frame("presence.changed", { user_id: s.userId, status: s.status });
    default:
      return null;
  }
}

/** Signals addressed to the user (watchlist). */
export function encodeUserSignal(s: {
  kind: string;
  userId?: string;
  online?: boolean;
  status?: string;
}) {
  if (s.kind === "watch")
    return frame(s.online ? "watchlist.online" : "watchlist.offline", { user_id: s.userId });
  if (s.kind === "status")
    return frame("presence.changed", { user_id: s.userId, status: s.status });
  return null;
}
