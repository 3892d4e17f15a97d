/**
 * Broadcaster frames ⇄ requests and events. Pure: no I/O, no clock, no
 * engine. Requests are JSON-RPC-like `{id, method, params}`; replies are
 * `{requestId, result}` or `{requestId, error:{code, message}}`.
 */

import { isValidChannel } from "../../../../../shared/src/channels.js";
import type { Json, StoredEvent } from "../../../../../shared/src/model.js";
import type { BroadcasterCode } from "./codes.js";

/** The client's `id`, echoed as `requestId`; null when the frame carried none we could read. */
export type RequestId = string | number | null;

export type Request =
  | { method: "auth"; token: string }
  | { method: "subscribe"; channel: string }
  | { method: "unsubscribe"; channel: string }
  | { method: "publish"; channel: string; event: string; payload: Json }
  | { method: "ping" };

export type Decoded =
  | { ok: true; id: RequestId; request: Request }
  | { ok: false; id: RequestId; code: "InvalidArgument"; message: string };

/** A publish as the REST API and the `publish` method take it. */
export interface PublishBody {
  channel: string;
  event: string;
  payload: Json;
}

const MAX_EVENT = 200;
const MAX_TOKEN = 8192;
const CHANNEL_RULE = "channel must be 1-200 characters of A-Z a-z 0-9 _ - = @ , . ; #";

class Invalid extends Error {}

export function decode(text: string): Decoded {
  const parsed = parseObject(text);
  if (typeof parsed === "string")
    return { ok: false, id: null, code: "InvalidArgument", message: parsed };
  const id = typeof parsed.id === "string" || typeof parsed.id === "number" ? parsed.id : null;
  try {
    if (parsed.id !== undefined && parsed.id !== null && id === null)
      throw new Invalid("id must be a string or number");
    if (typeof parsed.method !== "string") throw new Invalid("method must be a string");
    const params = parsed.params ?? {};
    if (typeof params !== "object" || params === null || Array.isArray(params))
      throw new Invalid("params must be an object");
    return { ok: true, id, request: request(parsed.method, params as Record<string, unknown>) };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return { ok: false, id, code: "InvalidArgument", message: err.message };
  }
}

function request(method: string, p: Record<string, unknown>): Request {
  switch (method) {
    case "auth":
      if (typeof p.token !== "string" || p.token === "" || p.token.length > MAX_TOKEN)
        throw new Invalid("token must be a non-empty string");
      return { method, token: p.token };
    case "subscribe":
    case "unsubscribe":
      return { method, channel: channel(p) };
    case "publish":
      return { method, ...publishFields(p) };
    case "ping":
      return { method };
    default:
      throw new Invalid(`unknown method ${JSON.stringify(method).slice(0, 80)}`);
  }
}

/** The REST publish body; a string is the reason it was refused. */
export function decodePublishBody(text: string): PublishBody | string {
  const parsed = parseObject(text);
  if (typeof parsed === "string") return parsed;
  try {
    return publishFields(parsed);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return err.message;
  }
}

function publishFields(p: Record<string, unknown>): PublishBody {
  const event = p.event;
  if (typeof event !== "string" || event === "" || event.length > MAX_EVENT)
    throw new Invalid(`event must be a string of 1-${MAX_EVENT} characters`);
  // An absent payload is published as null rather than refused: the seed marks no field optional.
  return {
    channel: channel(p),
    event,
    payload: p.payload === undefined ? null : (p.payload as Json),
  };
}

function channel(p: Record<string, unknown>): string {
  if (!isValidChannel(p.channel)) throw new Invalid(CHANNEL_RULE);
  return p.channel;
}

function parseObject(text: string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "frame is not valid JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return "frame must be a JSON object";
  return value as Record<string, unknown>;
}

// ---- server → client ----

/** RFC 3339 in UTC with milliseconds, as every Broadcaster timestamp. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

export const encode = {
  result: (id: RequestId, result: Json) => JSON.stringify({ requestId: id, result }),
  error: (id: RequestId, code: BroadcasterCode, message: string) =>
    JSON.stringify({ requestId: id, error: { code, message } }),
  /** A delivered event; `seq` counts per subscription, so each subscriber gets its own bytes. */
  message: (e: StoredEvent, seq: number) =>
    JSON.stringify({
      method: "message",
      params: {
        id: e.id,
        seq,
        createTime: rfc3339(e.time),
        channel: e.channel,
        event: e.name,
        payload: e.data,
      },
    }),
  /**
   * The server ended a subscription the client did not cancel (a refreshed
   * token no longer allows it, or the token expired). The seed has no such
   * notification; this one mirrors `message` and carries the error object
   * the matching request would have been refused with.
   */
  unsubscribed: (channel: string, subscriptionId: string, code: BroadcasterCode, message: string) =>
    JSON.stringify({
      method: "unsubscribed",
      params: { channel, subscriptionId, error: { code, message } },
    }),
  restError: (code: BroadcasterCode, message: string) =>
    JSON.stringify({ error: { code, message } }),
  published: (id: string, time: number) => ({ id, createTime: rfc3339(time) }),
};
