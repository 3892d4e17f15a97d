import { isValidChannel } from "../../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import type { Json } from "../../../../../shared/src/model.js";
import { EVENT_NAME_MAX, isServerToUser } from "./codec.js";
import { PusherHttpError } from "./codes.js";
import { parseTags, type Tags } from "./filter.js";

const SOCKET_ID = /^[0-9]{1,12}\.[0-9]{1,12}$/;
export type Attr = "user_count" | "subscription_count";

/** A checked event of `POST /events` or one item of `POST /batch_events`. */
export interface EventSpec {
  name: string;
  channels: [string, ...string[]];
  data: Json;
  socketId: string | undefined;
  info: Attr[];
  /** Sockudo tags, matched against subscribers' filters. */
  tags: Tags | undefined;
}

/** Checks an event body as Pusher does, with Pusher's statuses and messages. */
export function eventSpec(
  app: AppConfig,
  b: Record<string, unknown>,
  list: unknown,
  maxChannels: number,
): EventSpec {
  const name = b.name;
  if (typeof name !== "string" || name === "" || name.length > EVENT_NAME_MAX)
    throw new PusherHttpError(400, `name must be 1-${EVENT_NAME_MAX} characters`);
  if (name.startsWith("pusher:") || name.startsWith("pusher_internal:"))
    throw new PusherHttpError(403, `Event names starting with ${name.split(":")[0]}: are reserved`);
  if (!Array.isArray(list) || list.length === 0)
    throw new PusherHttpError(400, "channels must name at least one channel");
  if (list.length > maxChannels)
    throw new PusherHttpError(400, `At most ${maxChannels} channels per event`);
  for (const ch of list) {
    if (!(isValidChannel(ch) || (typeof ch === "string" && isServerToUser(ch))))
      throw new PusherHttpError(400, `Invalid channel name: ${String(ch).slice(0, 210)}`);
  }
  if (b.data === undefined) throw new PusherHttpError(400, "data is required");
  const data = b.data as Json;
  const size = typeof data === "string" ? Buffer.byteLength(data) : JSON.stringify(data).length;
  if (size > app.limits.maxFrameBytes)
    throw new PusherHttpError(413, `Event data over ${app.limits.maxFrameBytes} bytes`);
  const socketId = b.socket_id;
  if (socketId !== undefined && (typeof socketId !== "string" || !SOCKET_ID.test(socketId)))
    throw new PusherHttpError(400, "Invalid socket_id");
  const info = b.info === undefined ? [] : attrs(typeof b.info === "string" ? b.info : null, true);
  const tags = parseTags(b.tags);
  if (!tags.ok) throw new PusherHttpError(400, `Invalid tags: ${tags.message}`);
  const channels = list as [string, ...string[]];
  return { name, channels, data, socketId, info, tags: tags.value };
}

export function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new PusherHttpError(400, `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** `info=user_count,subscription_count`; unknown attributes are an error, as in Pusher. */
export function attrs(text: string | null, inBody = false): Attr[] {
  if (text === null || text === "") {
    if (inBody && text === null) throw new PusherHttpError(400, "info must be a string");
    return [];
  }
  const out: Attr[] = [];
  for (const a of text.split(",")) {
    const t = a.trim();
    if (t !== "user_count" && t !== "subscription_count")
      throw new PusherHttpError(400, `Unknown info attribute ${t.slice(0, 50)}`);
    out.push(t);
  }
  return out;
}

/** `Idempotency-Key` header or body `idempotency_key`, namespaced so dialects never collide. */
export function idempotencyKey(
  header: string | undefined,
  b: Record<string, unknown>,
): string | undefined {
  const k = header ?? b.idempotency_key;
  if (k === undefined) return undefined;
  if (typeof k !== "string" || k === "" || k.length > 200)
    throw new PusherHttpError(400, "idempotency_key must be 1-200 characters");
  return `pusher-http\u0000${k}`;
}
