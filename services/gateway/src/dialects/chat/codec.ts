/**
 * Chat frames ⇄ commands and events. Pure: no I/O, no clock, no engine —
 * the adapter passes timestamps in. Frames are JSON objects discriminated
 * by `type`: client `request` / `ack` / `event`, server `response` / `event`.
 */

import type { EventInput, Json, StoredEvent } from "../../../../../shared/src/model.js";
import type { ChatCode } from "./codes.js";

export type CallType = "video" | "audio";

/** A client request, by `payloadType` (see the table in protocols/chat.md). */
export type Request =
  | { payloadType: "new"; chatId: string; message: Json; clientMessageId?: string }
  | {
      payloadType: "edit";
      chatId: string;
      originalMessageId: string;
      originalClientMessageId?: string;
      message: Json;
    }
  | {
      payloadType: "delete";
      chatId: string;
      originalMessageId: string;
      originalClientMessageId?: string;
    }
  | { payloadType: "dlvrd" | "read"; chatId: string; messageId: string }
  | { payloadType: "newCall"; chatId: string; callType: CallType }
  | { payloadType: "closeCall"; callId: string };

export type PayloadType = Request["payloadType"];

/** What a decoded client frame asks for. */
export type ClientFrame =
  | { type: "request"; id: string; request: Request }
  /** `seq` is the acked event's id (the inbox seq). */
  | { type: "ack"; seq: number }
  | { type: "typing"; chatId: string };

/** `id` is the request's id when the broken frame carried a usable one, else null. */
export type Decoded =
  | { ok: true; frame: ClientFrame }
  | { ok: false; id: string | null; code: "invalid_payload"; message: string };

/** Longest user id, request id, message id or call id we accept. */
const MAX_ID = 200;
const CALL_TYPES = new Set<string>(["video", "audio"]);

class Invalid extends Error {}

type Obj = Record<string, unknown>;

export function decode(text: string): Decoded {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid(null, "frame is not valid JSON");
  }
  if (!isObject(parsed)) return invalid(null, "frame must be a JSON object");
  const f = parsed;
  const id = typeof f.id === "string" && f.id.length > 0 && f.id.length <= MAX_ID ? f.id : null;
  try {
    if (f.timestamp !== undefined && !Number.isFinite(f.timestamp))
      throw new Invalid("timestamp must be a number");
    switch (f.type) {
      case "request":
        if (id === null) throw new Invalid(`id must be a string of 1-${MAX_ID} characters`);
        if (typeof f.payloadType !== "string") throw new Invalid("payloadType must be a string");
        return { ok: true, frame: { type: "request", id, request: request(f.payloadType, f) } };
      case "ack":
        return { ok: true, frame: { type: "ack", seq: ackSeq(f.id) } };
      case "event": {
        if (f.eventType !== "typing") {
          throw new Invalid(`unknown client eventType ${short(f.eventType)}; only "typing"`);
        }
        return { ok: true, frame: { type: "typing", chatId: str(payloadOf(f), "chatId") } };
      }
      default:
        throw new Invalid('type must be "request", "ack" or "event"');
    }
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    // An ack's id names an event, not a request: it must not be echoed as if it were one.
    return invalid(f.type === "request" ? id : null, err.message);
  }
}

function request(payloadType: string, f: Obj): Request {
  const p = payloadOf(f);
  switch (payloadType) {
    case "new": {
      const r: Request = { payloadType, chatId: str(p, "chatId"), message: message(p) };
      const cmid = optStr(p, "clientMessageId");
      if (cmid !== undefined) r.clientMessageId = cmid;
      return r;
    }
    case "edit": {
      const r: Request = {
        payloadType,
        chatId: str(p, "chatId"),
        originalMessageId: str(p, "originalMessageId"),
        message: message(p),
      };
      const ocmid = optStr(p, "originalClientMessageId");
      if (ocmid !== undefined) r.originalClientMessageId = ocmid;
      return r;
    }
    case "delete": {
      const r: Request = {
        payloadType,
        chatId: str(p, "chatId"),
        originalMessageId: str(p, "originalMessageId"),
      };
      const ocmid = optStr(p, "originalClientMessageId");
      if (ocmid !== undefined) r.originalClientMessageId = ocmid;
      return r;
    }
    case "dlvrd":
    case "read":
      return { payloadType, chatId: str(p, "chatId"), messageId: str(p, "messageId") };
    case "newCall": {
      if (typeof p.callType !== "string" || !CALL_TYPES.has(p.callType))
        throw new Invalid('callType must be "video" or "audio"');
      return { payloadType, chatId: str(p, "chatId"), callType: p.callType as CallType };
    }
    case "closeCall":
      return { payloadType, callId: str(p, "callId") };
    default:
      throw new Invalid(`unknown payloadType ${short(payloadType)}`);
  }
}

function payloadOf(f: Obj): Obj {
  if (!isObject(f.payload)) throw new Invalid("payload must be an object");
  return f.payload;
}

function str(p: Obj, name: string): string {
  const v = p[name];
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_ID)
    throw new Invalid(`${name} must be a string of 1-${MAX_ID} characters`);
  return v;
}

function optStr(p: Obj, name: string): string | undefined {
  return p[name] === undefined ? undefined : str(p, name);
}

function message(p: Obj): Json {
  if (p.message === undefined || p.message === null) throw new Invalid("message is required");
  return p.message as Json;
}

/** The seed sends ack ids as strings ("23"); a bare number is accepted too. */
function ackSeq(v: unknown): number {
  const n = typeof v === "string" && /^[0-9]{1,16}$/.test(v) ? Number(v) : v;
  if (!Number.isSafeInteger(n) || (n as number) < 0)
    throw new Invalid('ack id must be an event id, e.g. "23"');
  return n as number;
}

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function short(v: unknown): string {
  return (JSON.stringify(v) ?? String(v)).slice(0, 80);
}

function invalid(id: string | null, message: string): Decoded {
  return { ok: false, id, code: "invalid_payload", message };
}

// ---- server → client ----

/** Ephemeral events (typing, online, offline) carry this id: nothing to ack. */
export const EPHEMERAL_ID = 0;

export type ServerEventType =
  | "new"
  | "edit"
  | "delete"
  | "dlvrd"
  | "read"
  | "newCall"
  | "closeCall"
  | "call"
  | "typing"
  | "online"
  | "offline";

/** Stored events whose payload gets `messageId` = the stored event's id. */
const MESSAGE_EVENTS = new Set<string>(["new", "edit", "call"]);

export const encode = {
  response: (id: string, timestamp: number, payload: Json) =>
    JSON.stringify({ type: "response", timestamp, id, payload }),
  /** `id` null: the frame had no usable request id (JSON-RPC's answer to a parse error). */
  error: (id: string | null, timestamp: number, code: ChatCode, message: string) =>
    JSON.stringify({ type: "response", timestamp, id, error: { code, message } }),
  event: (id: number, timestamp: number, eventType: ServerEventType, payload: Json) =>
    JSON.stringify({ type: "event", timestamp, id, eventType, payload }),
  typing: (timestamp: number, from: string) =>
    encode.event(EPHEMERAL_ID, timestamp, "typing", { chatId: from }),
  online: (timestamp: number, userId: string, online: boolean) =>
    encode.event(EPHEMERAL_ID, timestamp, online ? "online" : "offline", { userId }),
};

/**
 * The frame for an event stored in a user's inbox: `id` is its seq and the
 * timestamp is when it was stored, so a redelivery repeats the same frame.
 * A message's id is the id of the event that carried it to the recipient,
 * known only once stored, so it is added here rather than kept in the data.
 */
export function encodeStored(e: StoredEvent): string {
  let payload = e.data;
  if (MESSAGE_EVENTS.has(e.name) && isObject(payload)) payload = { messageId: e.id, ...payload };
  return encode.event(e.seq, e.time, e.name as ServerEventType, payload);
}

// ---- what goes into an inbox (`userId` = who caused it) ----

export interface CallRecord {
  callId: string;
  caller: string;
  callee: string;
  callType: CallType;
}

/** Absent optional fields are left out of the payload, not sent as null. */
function stored(
  name: ServerEventType,
  userId: string,
  data: { [k: string]: Json | undefined },
): EventInput {
  const clean: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(data)) if (v !== undefined) clean[k] = v;
  return { name, data: clean, userId };
}

export const toInbox = {
  new: (sender: string, r: Request & { payloadType: "new" }) =>
    stored("new", sender, {
      chatId: sender,
      message: r.message,
      clientMessageId: r.clientMessageId,
    }),
  edit: (sender: string, r: Request & { payloadType: "edit" }, originalClientMessageId?: string) =>
    stored("edit", sender, {
      chatId: sender,
      originalMessageId: r.originalMessageId,
      originalClientMessageId: r.originalClientMessageId ?? originalClientMessageId,
      message: r.message,
    }),
  delete: (
    sender: string,
    r: Request & { payloadType: "delete" },
    originalClientMessageId?: string,
  ) =>
    stored("delete", sender, {
      chatId: sender,
      originalMessageId: r.originalMessageId,
      originalClientMessageId: r.originalClientMessageId ?? originalClientMessageId,
    }),
  receipt: (kind: "dlvrd" | "read", reader: string, messageId: string) =>
    stored(kind, reader, { chatId: reader, messageId }),
  newCall: (c: CallRecord) =>
    stored("newCall", c.caller, {
      callId: c.callId,
      caller: c.caller,
      callType: c.callType,
      participants: [c.caller, c.callee],
    }),
  closeCall: (closer: string, callId: string, callDuration: number) =>
    stored("closeCall", closer, { callId, callDuration }),
  /** CallStoredPayload, plus `chatId` = the other participant as seen by the inbox owner. */
  call: (closer: string, c: CallRecord, callDuration: number, owner: string) =>
    stored("call", closer, {
      chatId: owner === c.caller ? c.callee : c.caller,
      callId: c.callId,
      caller: c.caller,
      participants: [c.caller, c.callee],
      callType: c.callType,
      callDuration,
    }),
};
