/**
 * Foony frames ⇄ commands and events. Pure: no I/O, no clock, no engine.
 * Every frame is a JSON object with a one-word `t`; client requests carry a
 * numeric `id` that `ack`/`err`/`histRes` echo.
 */

import { isValidChannel } from "../../../../../shared/src/channels.js";
import type { Json, Signal, StoredEvent } from "../../../../../shared/src/model.js";
import { type FoonyCode, FoonyError } from "./codes.js";

export type PresenceAction = "enter" | "leave" | "update";

export type ClientFrame =
  | { t: "auth"; token?: string; key?: string; clientId?: string }
  | { t: "sub"; channel: string; id: number; lastMessageId?: string; afterSeq?: number }
  | { t: "unsub"; channel: string; id: number }
  | { t: "pub"; channel: string; name: string; data: Json; id: number }
  | { t: "pres"; channel: string; action: PresenceAction; data?: Json; id: number }
  | { t: "hist"; channel: string; id: number; limit: number; beforeSeq?: number }
  | { t: "ping" };

export type Decoded =
  | { ok: true; frame: ClientFrame }
  | { ok: false; id: number | undefined; code: FoonyCode; message: string };

export const HIST_DEFAULT = 100;
export const HIST_MAX = 1000;
const MAX_NAME = 200;
const MAX_CLIENT_ID = 200;
const MAX_CREDENTIAL = 8192;
const ACTIONS = new Set(["enter", "leave", "update"]);

/**
 * Foony's own message id: the event's seq behind a prefix, so a client's
 * `lastMessageId`/`before` resolves straight back to a replay position.
 */
export function messageIdOf(seq: number): string {
  return `m_${seq}`;
}

export function seqOfMessageId(id: string): number | null {
  const m = /^m_([1-9][0-9]{0,15})$/.exec(id);
  const seq = m ? Number(m[1]) : Number.NaN;
  return Number.isSafeInteger(seq) ? seq : null;
}

class Invalid extends Error {}

export function decode(text: string): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {
      ok: false,
      id: undefined,
      code: FoonyError.badFrame,
      message: "frame is not valid JSON",
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      ok: false,
      id: undefined,
      code: FoonyError.badFrame,
      message: "frame must be a JSON object",
    };
  }
  const f = value as Record<string, unknown>;
  const id = Number.isSafeInteger(f.id) ? (f.id as number) : undefined;
  try {
    return { ok: true, frame: frame(f) };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return { ok: false, id, code: FoonyError.badFrame, message: err.message };
  }
}

function frame(f: Record<string, unknown>): ClientFrame {
  if (typeof f.t !== "string") throw new Invalid("t must be a string");
  switch (f.t) {
    case "auth": {
      const token = optionalString(f, "token", MAX_CREDENTIAL);
      const key = optionalString(f, "key", MAX_CREDENTIAL);
      if ((token === undefined) === (key === undefined))
        throw new Invalid("auth needs exactly one of token or key");
      const clientId = optionalString(f, "clientId", MAX_CLIENT_ID);
      return { t: "auth", token, key, clientId };
    }
    case "sub": {
      const c: ClientFrame = { t: "sub", channel: channel(f), id: requestId(f) };
      const last = optionalString(f, "lastMessageId", 40);
      if (last !== undefined) {
        const seq = seqOfMessageId(last);
        if (seq === null) throw new Invalid("lastMessageId is not a message id from this service");
        c.lastMessageId = last;
        c.afterSeq = seq;
      }
      return c;
    }
    case "unsub":
      return { t: "unsub", channel: channel(f), id: requestId(f) };
    case "pub": {
      const name = f.name;
      if (typeof name !== "string" || name === "" || name.length > MAX_NAME)
        throw new Invalid(`name must be a string of 1-${MAX_NAME} characters`);
      const data = f.data === undefined ? null : (f.data as Json);
      return { t: "pub", channel: channel(f), name, data, id: requestId(f) };
    }
    case "pres": {
      if (typeof f.action !== "string" || !ACTIONS.has(f.action))
        throw new Invalid("action must be enter, leave or update");
      const c: ClientFrame = {
        t: "pres",
        channel: channel(f),
        action: f.action as PresenceAction,
        id: requestId(f),
      };
      if (f.data !== undefined) c.data = f.data as Json;
      return c;
    }
    case "hist": {
      const c: ClientFrame = {
        t: "hist",
        channel: channel(f),
        id: requestId(f),
        limit: HIST_DEFAULT,
      };
      if (f.limit !== undefined) {
        if (!Number.isInteger(f.limit) || (f.limit as number) < 1 || (f.limit as number) > HIST_MAX)
          throw new Invalid(`limit must be an integer from 1 to ${HIST_MAX}`);
        c.limit = f.limit as number;
      }
      const before = optionalString(f, "before", 40);
      if (before !== undefined) {
        const seq = seqOfMessageId(before);
        if (seq === null) throw new Invalid("before is not a message id from this service");
        c.beforeSeq = seq;
      }
      return c;
    }
    case "ping":
      return { t: "ping" };
    default:
      throw new Invalid(`unknown t ${JSON.stringify(f.t).slice(0, 80)}`);
  }
}

function requestId(f: Record<string, unknown>): number {
  if (!Number.isSafeInteger(f.id)) throw new Invalid("id must be an integer");
  return f.id as number;
}

function channel(f: Record<string, unknown>): string {
  if (!isValidChannel(f.channel))
    throw new Invalid("channel must be 1-200 characters of A-Z a-z 0-9 _ - = @ , . ; #");
  return f.channel;
}

function optionalString(f: Record<string, unknown>, name: string, max: number): string | undefined {
  const v = f[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "" || v.length > max)
    throw new Invalid(`${name} must be a string of 1-${max} characters`);
  return v;
}

// ---- server → client ----

export function messagePayload(e: StoredEvent) {
  return {
    t: "msg" as const,
    channel: e.channel,
    name: e.name,
    data: e.data,
    timestamp: e.time,
    messageId: messageIdOf(e.seq),
    clientId: e.userId,
  };
}

export const encode = {
  connected: (connectionId: string, keepAliveMs: number, clientId: string) =>
    JSON.stringify({ t: "connected", connectionId, keepAliveMs, clientId }),
  ack: (id: number) => JSON.stringify({ t: "ack", id }),
  err: (id: number | undefined, code: FoonyCode, message: string) =>
    JSON.stringify({ t: "err", id, code, message }),
  pong: () => '{"t":"pong"}',
  msg: (e: StoredEvent) => JSON.stringify(messagePayload(e)),
  /** `timestamp` is when the gateway saw the change: signals carry no time of their own. */
  presEvt: (channel: string, s: Signal & { kind: "entry" }, timestamp: number) =>
    JSON.stringify({
      t: "presEvt",
      channel,
      action: s.action,
      clientId: s.clientId,
      connectionId: s.connectionId,
      data: s.data,
      timestamp,
    }),
  histRes: (id: number, channel: string, events: StoredEvent[], more: boolean) =>
    JSON.stringify({ t: "histRes", id, channel, messages: events.map(messagePayload), more }),
};
