/**
 * Pusher protocol 7 frames ⇄ commands and events. Pure: no I/O, no clock,
 * no engine. Frames are JSON text `{event, channel?, data?}`; server frames
 * carry `data` as a JSON string, as Pusher sends them.
 */

import { channelKind, isValidChannel } from "../../../../../shared/src/channels.js";
import { jsonTooDeep } from "../../../../../shared/src/json-depth.js";
import type { Delivery, Json } from "../../../../../shared/src/model.js";
import { type Parsed, parseFilter, type TagFilter } from "./filter.js";

export type Command =
  | { type: "ping" }
  | { type: "pong" }
  | {
      type: "subscribe";
      channel: string;
      auth: string | undefined;
      channelData: string | undefined;
      /** Sockudo tag filter; a malformed one is refused per channel, not per frame. */
      filter: Parsed<TagFilter> | undefined;
    }
  | { type: "unsubscribe"; channel: string }
  /** Sockudo: `algorithms` the client can decode, when it says. */
  | { type: "enable_delta"; algorithms: string[] | undefined }
  /** Sockudo: the client lost its delta base for `channel`. */
  | { type: "delta_sync_error"; channel: string }
  | { type: "signin"; auth: string; userData: string }
  | { type: "client_event"; channel: string; event: string; data: Json };

/**
 * A refused frame. `channel` is set when the frame was a subscribe naming
 * that (invalid) channel: the refusal belongs to it, so pusher-js can route
 * it to the channel object the app is waiting on.
 */
export type Decoded =
  | { ok: true; command: Command }
  | { ok: false; message: string; channel?: string };

export const EVENT_NAME_MAX = 200;
/** pusher-js subscribes to this channel after `pusher:signin_success`. */
export const SERVER_TO_USER_PREFIX = "#server-to-user-";

export const CHANNEL_RULE =
  "invalid channel name: it must be 1-200 characters of A-Z a-z 0-9 _ - = @ , . ; #";

class Invalid extends Error {
  constructor(
    message: string,
    readonly channel?: string,
  ) {
    super(message);
  }
}

export function decode(text: string): Decoded {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { ok: false, message: "frame is not valid JSON" };
  }
  try {
    return { ok: true, command: toCommand(frame) };
  } catch (err) {
    if (err instanceof Invalid)
      return err.channel === undefined
        ? { ok: false, message: err.message }
        : { ok: false, message: err.message, channel: err.channel };
    throw err;
  }
}

function toCommand(frame: unknown): Command {
  if (!isObject(frame)) throw new Invalid("frame must be a JSON object");
  const event = frame.event;
  if (typeof event !== "string" || event === "") throw new Invalid("event must be a string");
  switch (event) {
    case "pusher:ping":
      return { type: "ping" };
    case "pusher:pong":
      return { type: "pong" };
    case "pusher:subscribe": {
      const data = objectData(frame.data);
      return {
        type: "subscribe",
        channel: subscribeChannelOf(data.channel),
        auth: optionalString(data.auth, "auth"),
        channelData: optionalString(data.channel_data, "channel_data"),
        filter: filterOf(data.filter ?? data.tags_filter),
      };
    }
    case "pusher:enable_delta_compression": {
      const data = frame.data === undefined || frame.data === null ? {} : objectData(frame.data);
      const algorithms = data.algorithms;
      if (algorithms === undefined) return { type: "enable_delta", algorithms: undefined };
      if (!Array.isArray(algorithms) || !algorithms.every((a) => typeof a === "string"))
        throw new Invalid("algorithms must be an array of strings");
      return { type: "enable_delta", algorithms };
    }
    case "pusher:delta_sync_error":
      return { type: "delta_sync_error", channel: channelOf(objectData(frame.data).channel) };
    case "pusher:unsubscribe":
      return { type: "unsubscribe", channel: channelOf(objectData(frame.data).channel) };
    case "pusher:signin": {
      const data = objectData(frame.data);
      if (typeof data.auth !== "string") throw new Invalid("auth must be a string");
      if (typeof data.user_data !== "string") throw new Invalid("user_data must be a string");
      return { type: "signin", auth: data.auth, userData: data.user_data };
    }
  }
  if (event.startsWith("client-")) {
    if (event.length > EVENT_NAME_MAX)
      throw new Invalid(`event name longer than ${EVENT_NAME_MAX} characters`);
    const channel = channelOf(frame.channel);
    const raw = frame.data === undefined ? null : (frame.data as Json);
    const data =
      typeof raw === "string" ? dataFromPusher(raw, channelKind(channel).encrypted) : raw;
    return { type: "client_event", channel, event, data };
  }
  throw new Invalid(`unsupported event ${event.slice(0, EVENT_NAME_MAX)}`);
}

/** Some clients send `data` as a JSON string rather than an object. */
function objectData(data: unknown): Record<string, unknown> {
  let value = data;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      throw new Invalid("data must be an object");
    }
  }
  if (!isObject(value)) throw new Invalid("data must be an object");
  return value;
}

function filterOf(value: unknown): Parsed<TagFilter> | undefined {
  return value === undefined || value === null ? undefined : parseFilter(value);
}

function channelOf(value: unknown): string {
  if (isValidChannel(value)) return value;
  if (typeof value === "string" && isServerToUser(value)) return value;
  throw new Invalid(CHANNEL_RULE);
}

/** As `channelOf`, but a named channel owns its refusal (see `Decoded`). */
function subscribeChannelOf(value: unknown): string {
  if (typeof value === "string" && value !== "" && !isValidChannel(value) && !isServerToUser(value))
    throw new Invalid(CHANNEL_RULE, value);
  return channelOf(value);
}

export function isServerToUser(channel: string): boolean {
  return channel.startsWith(SERVER_TO_USER_PREFIX) && channel.length > SERVER_TO_USER_PREFIX.length;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new Invalid(`${field} must be a string`);
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A Pusher `data` string as the core stores it: valid JSON text is stored
 * parsed so other dialects see structure (so `"123"` becomes 123, a known
 * loss); encrypted payloads stay the opaque string they are.
 */
export function dataFromPusher(data: string, encrypted: boolean): Json {
  // Too deep to re-encode for other dialects: it travels as the text it is.
  if (encrypted || jsonTooDeep(data)) return data;
  try {
    return JSON.parse(data) as Json;
  } catch {
    return data;
  }
}

/** Core data as Pusher's `data` string: strings as they are, anything else as JSON text. */
export function dataToPusher(data: Json): string {
  return typeof data === "string" ? data : JSON.stringify(data);
}

export interface PresenceHash {
  ids: string[];
  hash: Record<string, Json>;
  count: number;
}

export interface WatchlistEvent {
  name: "online" | "offline";
  user_ids: string[];
}

const frame = (event: string, data: unknown, channel?: string): string =>
  JSON.stringify(channel === undefined ? { event, data } : { event, channel, data });

export const encode = {
  connectionEstablished: (socketId: string, activityTimeoutSec: number) =>
    frame(
      "pusher:connection_established",
      JSON.stringify({ socket_id: socketId, activity_timeout: activityTimeoutSec }),
    ),
  /** `code` null for protocol errors Pusher has no number for (malformed frames). */
  error: (code: number | null, message: string) => frame("pusher:error", { code, message }),
  ping: () => frame("pusher:ping", "{}"),
  pong: () => frame("pusher:pong", "{}"),
  subscriptionSucceeded: (channel: string, presence?: PresenceHash) =>
    frame(
      "pusher_internal:subscription_succeeded",
      JSON.stringify(presence ? { presence } : {}),
      channel,
    ),
  /** The shape pusher-js hands to `pusher:subscription_error` listeners. */
  subscriptionError: (channel: string, type: string, error: string, status: number) =>
    frame("pusher:subscription_error", { type, error, status }, channel),
  cacheMiss: (channel: string) => frame("pusher:cache_miss", "{}", channel),
  memberAdded: (channel: string, userId: string, info: Json | undefined) =>
    frame(
      "pusher_internal:member_added",
      JSON.stringify(
        info === undefined ? { user_id: userId } : { user_id: userId, user_info: info },
      ),
      channel,
    ),
  memberRemoved: (channel: string, userId: string) =>
    frame("pusher_internal:member_removed", JSON.stringify({ user_id: userId }), channel),
  subscriptionCount: (channel: string, count: number) =>
    frame(
      "pusher_internal:subscription_count",
      JSON.stringify({ subscription_count: count }),
      channel,
    ),
  event: (channel: string, name: string, data: Json, userId?: string) => {
    const out: Record<string, string> = { event: name, channel, data: dataToPusher(data) };
    if (userId !== undefined) out.user_id = userId;
    return JSON.stringify(out);
  },
  signinSuccess: (userData: string) =>
    frame("pusher:signin_success", JSON.stringify({ user_data: userData })),
  watchlistEvents: (events: WatchlistEvent[]) =>
    frame("pusher_internal:watchlist_events", JSON.stringify({ events })),
  userEvent: (userId: string, name: string, data: Json) =>
    encode.event(`${SERVER_TO_USER_PREFIX}${userId}`, name, data),
  /** Sockudo's reply to `pusher:enable_delta_compression`; data is an object, as Sockudo sends it. */
  deltaCompressionEnabled: () =>
    frame("pusher:delta_compression_enabled", { enabled: true, algorithm: "fossil" }),
  /**
   * A full event frame a delta client keeps as its base. Sockudo's client
   * strips `,"__delta_seq":N` from the raw text to get the base, so the
   * marker goes last and the rest stays byte-identical to `eventFrame`.
   */
  withDeltaSeq: (eventFrame: string, seq: number) =>
    `${eventFrame.slice(0, -1)},"__delta_seq":${seq}}`,
  /**
   * Sockudo's `pusher:delta`: `delta` is the base64 fossil delta from the
   * previous frame of the channel (`base_seq`) to the frame of event `seq`.
   */
  delta: (channel: string, data: DeltaData) => frame("pusher:delta", data, channel),
};

export interface DeltaData {
  /** The target event's name, which the client emits after reconstructing it. */
  event: string;
  delta: string;
  seq: number;
  base_seq: number;
  algorithm: "fossil";
}

/**
 * A channel delivery as a Pusher frame, identical for every Pusher
 * subscriber (so the hub encodes it once), or null when Pusher has no
 * counterpart (typing, cursors, reactions, statuses).
 */
export function encodeDelivery(channel: string, d: Delivery): string | null {
  const presence = channelKind(channel).presence;
  if (d.type === "event") {
    const e = d.event;
    return encode.event(channel, e.name, e.data, presence ? e.userId : undefined);
  }
  const s = d.signal;
  switch (s.kind) {
    case "transient":
      return encode.event(channel, s.name, s.data, presence ? s.userId : undefined);
    case "member":
      if (!presence) return null;
      return s.action === "joined"
        ? encode.memberAdded(channel, s.userId, s.info)
        : encode.memberRemoved(channel, s.userId);
    case "subscriber_count":
      // pusher-js tracks members, not subscriptions, on presence channels.
      return presence ? null : encode.subscriptionCount(channel, s.count);
    default:
      return null;
  }
}
