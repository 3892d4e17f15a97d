import { createHash } from "node:crypto";

/**
 * Every NATS wire name Tidings uses — subjects, stream, KV bucket and key
 * names — is built here and nowhere else, so the naming scheme can be read
 * (and changed) in one place.
 *
 * Layout, per app:
 *   tdg.<app>.ev.<channel>     stored events (captured by stream TIDINGS_<app>)
 *   tdg.<app>.ev-<i>of<n>.<channel>
 *                              the same, for an app spread over n > 1 streams
 *                              (`streamPartitions`): partition i's stream is
 *                              TIDINGS-P<i>of<n>_<app> (see `channelStream`)
 *   tdg.<app>.live.<channel>   RePublish of each stored event (live fan-out), and
 *                              the channel's ephemeral signals on core NATS, never stored
 *   tdg.<app>.user.<user>      signals addressed to one user
 *
 * A channel's live events and signals share one subject so that a gateway
 * follows a channel with one NATS subscription (each costs memory on the
 * gateway and on nats-server: loadtest/results.md). They are told apart by headers: a
 * RePublished event carries `Nats-Sequence`, a signal carries none.
 * (Before 2026-12, signals went to `tdg.<app>.sig.<channel>`.)
 *
 * `<app>`, `<channel>` and `<user>` are single subject tokens produced by
 * `encodeToken`, so a channel name may contain anything (dots, wildcards,
 * spaces, emoji) without changing the subject's shape.
 */

/**
 * Tokens made only of these characters, not starting with the escape marker,
 * are used verbatim: they are valid in subjects, stream names, KV bucket
 * names and KV keys alike, and keep common names readable in monitoring.
 */
const VERBATIM = /^[A-Za-z0-9-][A-Za-z0-9_-]*$/;

/**
 * Escaped tokens start with `_` and carry the base64url (no padding) of the
 * UTF-8 name. Verbatim tokens never start with `_`, so the two forms cannot
 * collide, and base64url's alphabet stays inside the verbatim character set.
 */
const ESCAPE = "_";

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export class InvalidTokenError extends Error {
  override name = "InvalidTokenError";
}

/** Encodes any string (including "") into one non-empty subject token. */
export function encodeToken(name: string): string {
  if (VERBATIM.test(name)) return name;
  return ESCAPE + Buffer.from(utf8.encode(name)).toString("base64url");
}

/** Inverse of `encodeToken`; throws `InvalidTokenError` for tokens it never produces. */
export function decodeToken(token: string): string {
  if (VERBATIM.test(token)) return token;
  if (!token.startsWith(ESCAPE)) throw new InvalidTokenError(`not a Tidings token: ${token}`);
  const b64 = token.slice(ESCAPE.length);
  // Node's base64url decoder ignores stray characters and accepts
  // non-canonical trailing bits; re-encoding rejects both, keeping the codec
  // a bijection (one name, one token).
  const bytes = Buffer.from(b64, "base64url");
  if (bytes.toString("base64url") !== b64) {
    throw new InvalidTokenError(`not canonical base64url: ${token}`);
  }
  let name: string;
  try {
    name = strictUtf8.decode(bytes);
  } catch (cause) {
    throw new InvalidTokenError(`token is not UTF-8: ${token}`, { cause });
  }
  // A name that would have been written verbatim was never escaped.
  if (VERBATIM.test(name)) throw new InvalidTokenError(`non-canonical token: ${token}`);
  return name;
}

const ROOT = "tdg";

/** Most streams one app's events may be spread over (`streamPartitions`). */
export const MAX_STREAM_PARTITIONS = 64;

/**
 * The partition (0..partitions-1) holding a channel's events: FNV-1a (32-bit)
 * of the channel name's UTF-8 bytes, modulo `partitions`. Stable across
 * processes, versions and restarts, so a channel stays in one stream and
 * its seqs keep their order; changing the function moves channels and
 * hides their history, exactly like changing `partitions`.
 */
export function partitionOf(channel: string, partitions: number): number {
  if (partitions <= 1) return 0;
  let h = 0x811c9dc5;
  for (const byte of utf8.encode(channel)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}

/**
 * The JetStream stream holding partition `partition` of an app's events.
 * One partition keeps the original name; with more, the name carries both
 * numbers, so streams of another partition count never share a name (and a
 * changed count is visible in the names alone). `TIDINGS-P…` cannot collide
 * with `TIDINGS_<token>` (another app's) or with `WEBHOOK_STREAM`.
 */
export function streamName(appId: string, partition = 0, partitions = 1): string {
  if (partitions <= 1) return `TIDINGS_${encodeToken(appId)}`;
  return `TIDINGS-P${partition}of${partitions}_${encodeToken(appId)}`;
}

/** The event token of a partition: `ev` alone, or `ev-<i>of<n>` so partitions never overlap. */
function eventToken(partition: number, partitions: number): string {
  return partitions <= 1 ? "ev" : `ev-${partition}of${partitions}`;
}

const PARTITION_TOKEN = /^ev-(\d+)of(\d+)$/;

/**
 * Subject an event of `channel` is published to (and stored under), for an
 * app spread over `partitions` streams.
 */
export function eventSubject(appId: string, channel: string, partitions = 1): string {
  const token = eventToken(partitionOf(channel, partitions), partitions);
  return `${ROOT}.${encodeToken(appId)}.${token}.${encodeToken(channel)}`;
}

/** A partition stream's subject filter and RePublish source. */
export function eventWildcard(appId: string, partition = 0, partitions = 1): string {
  return `${ROOT}.${encodeToken(appId)}.${eventToken(partition, partitions)}.>`;
}

/** Everything of one app's under the root: finds its streams whatever their partition count. */
export function appWildcard(appId: string): string {
  return `${ROOT}.${encodeToken(appId)}.>`;
}

/** Where one channel's events are stored and delivered. */
export interface ChannelStream {
  stream: string;
  eventSubject: string;
  /** Where the channel's events are RePublished and its signals sent. */
  liveSubject: string;
  /** Every live subject of the app (a gateway's one live subscription per app). */
  liveWildcard: string;
  /** Index of `stream` among the app's partitions. */
  partition: number;
}

/**
 * The one mapping of (app, channel) to its stream and subjects; the engine
 * goes through it for every read, write and subscription.
 */
export function channelStream(appId: string, channel: string, partitions = 1): ChannelStream {
  const partition = partitionOf(channel, partitions);
  return {
    stream: streamName(appId, partition, partitions),
    eventSubject: eventSubject(appId, channel, partitions),
    liveSubject: liveSubject(appId, channel),
    liveWildcard: liveWildcard(appId),
    partition,
  };
}

/**
 * The partition count a stream name of this app's stands for (1 for
 * `TIDINGS_<app>`), or null when the name is not one `streamName` makes for it.
 */
export function partitionsOfStream(appId: string, stream: string): number | null {
  if (stream === streamName(appId)) return 1;
  const m = /^TIDINGS-P(\d+)of(\d+)_(.+)$/.exec(stream);
  if (!m || m[3] !== encodeToken(appId)) return null;
  const [partition, partitions] = [Number(m[1]), Number(m[2])];
  return partitions > 1 &&
    partition < partitions &&
    stream === streamName(appId, partition, partitions)
    ? partitions
    : null;
}

/** Where RePublish copies each stored event of `channel`. */
export function liveSubject(appId: string, channel: string): string {
  return `${ROOT}.${encodeToken(appId)}.live.${encodeToken(channel)}`;
}

/** Every partition stream's RePublish destination: one live subject per channel whatever the partition count. */
export function liveWildcard(appId: string): string {
  return `${ROOT}.${encodeToken(appId)}.live.>`;
}

/**
 * Core NATS subject for a channel's ephemeral signals: its live subject (see
 * the layout above), so the channel's one subscription receives them.
 */
export function signalSubject(appId: string, channel: string): string {
  return liveSubject(appId, channel);
}

/** Core NATS subject for signals addressed to one user. */
export function userSubject(appId: string, userId: string): string {
  return `${ROOT}.${encodeToken(appId)}.user.${encodeToken(userId)}`;
}

/**
 * The channel an event/live/signal subject belongs to, or null when the
 * subject is not one of this app's.
 */
export function channelOfSubject(appId: string, subject: string): string | null {
  const parts = subject.split(".");
  if (parts.length !== 4 || parts[0] !== ROOT || parts[1] !== encodeToken(appId)) return null;
  const kind = parts[2] ?? "";
  if (kind !== "ev" && kind !== "live" && !PARTITION_TOKEN.test(kind)) return null;
  try {
    return decodeToken(parts[3] ?? "");
  } catch {
    // Not produced by us: treat as foreign rather than as a channel.
    return null;
  }
}

/** KV bucket names are shared by all apps; the app is the first key token. */
export function kvBucketName(bucket: string): string {
  return `tidings_${encodeToken(bucket)}`;
}

/**
 * KV key for an app-scoped key: `<app>.<key>`. Both halves are tokens from
 * `encodeToken`, whose alphabet (`[A-Za-z0-9_-]`) is inside what NATS KV
 * accepts, so any string is a valid key.
 */
export function kvKey(appId: string, key: string): string {
  return `${encodeToken(appId)}.${encodeToken(key)}`;
}

/** KV key filter matching every key of one app. */
export function kvAppFilter(appId: string): string {
  return `${encodeToken(appId)}.>`;
}

/** The app-level key of a KV key built by `kvKey`, or null if it is not one. */
export function decodeKvKey(appId: string, kvKeyValue: string): string | null {
  const prefix = `${encodeToken(appId)}.`;
  if (!kvKeyValue.startsWith(prefix)) return null;
  const token = kvKeyValue.slice(prefix.length);
  if (token.includes(".")) return null;
  try {
    return decodeToken(token);
  } catch {
    return null;
  }
}

/**
 * Nats-Msg-Id for an idempotency key. Client keys and engine-generated ids
 * live in separate prefixes so a client can never replay an internal id.
 * Long keys are hashed to keep the header (and the server's dedupe map) small,
 * and so is any key a header would not carry unchanged: the client trims
 * header values (so "k " would collide with "k") and rejects CR/LF.
 */
export function msgIdForKey(key: string): string {
  if (key.length <= 64 && HEADER_SAFE.test(key)) return `k:${key}`;
  return `h:${createHash("sha256").update(key).digest("base64url")}`;
}

/** Printable ASCII without spaces: survives a NATS header byte for byte. */
const HEADER_SAFE = /^[\x21-\x7e]*$/;

/** Nats-Msg-Id for a publish without a client key; still set so retries are deduplicated. */
export function generatedMsgId(unique: string): string {
  return `g:${unique}`;
}

/**
 * The work-queue stream of Pusher webhook batches, shared by all apps. A
 * hyphen, not `TIDINGS_`: `streamName` owns every `TIDINGS_<token>` name, and
 * an app called `WEBHOOKS` must not collide with it.
 */
export const WEBHOOK_STREAM = "TIDINGS-WEBHOOKS";

/** The one durable pull consumer every presence replica drains the webhook stream through. */
export const WEBHOOK_CONSUMER = "tidings-webhooks";

/** Where one app's webhook batches are stored (the per-app bound is per subject). */
export function webhookSubject(appId: string): string {
  return `tdg-webhooks.${encodeToken(appId)}`;
}

export function webhookWildcard(): string {
  return "tdg-webhooks.>";
}

/**
 * The operator console's cluster tree. Its own root, like the presence and
 * webhook subjects, so no app id can collide with it:
 *
 *   tdg-console.stats    every gateway and presence replica's stats, each second
 *   tdg-console.probe    a console's question to every gateway (scatter-gather)
 */
const CONSOLE_ROOT = "tdg-console";

export function consoleStatsSubject(): string {
  return `${CONSOLE_ROOT}.stats`;
}

export function consoleProbeSubject(): string {
  return `${CONSOLE_ROOT}.probe`;
}
