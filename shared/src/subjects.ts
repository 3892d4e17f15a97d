import { createHash } from "node:crypto";

/**
 * Every NATS wire name Tidings uses — subjects, stream, KV bucket and key
 * names — is built here and nowhere else, so the naming scheme can be read
 * (and changed) in one place.
 *
 * Layout, per app:
 *   tdg.<app>.ev.<channel>     stored events (captured by stream TIDINGS_<app>)
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

/** The JetStream stream holding one app's events. */
export function streamName(appId: string): string {
  return `TIDINGS_${encodeToken(appId)}`;
}

/** Subject an event of `channel` is published to (and stored under). */
export function eventSubject(appId: string, channel: string): string {
  return `${ROOT}.${encodeToken(appId)}.ev.${encodeToken(channel)}`;
}

/** The stream's subject filter and RePublish source. */
export function eventWildcard(appId: string): string {
  return `${ROOT}.${encodeToken(appId)}.ev.>`;
}

/** Where RePublish copies each stored event of `channel`. */
export function liveSubject(appId: string, channel: string): string {
  return `${ROOT}.${encodeToken(appId)}.live.${encodeToken(channel)}`;
}

/** The stream's RePublish destination. */
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
  if (parts[2] !== "ev" && parts[2] !== "live") return null;
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
