/** Channel names and what their prefixes mean; the same in every dialect. */

const NAME = /^[A-Za-z0-9_\-=@,.;#]{1,200}$/;

/** Valid client-facing channel name (see protocols/README.md "Channels"). */
export function isValidChannel(name: unknown): name is string {
  return typeof name === "string" && NAME.test(name) && !name.startsWith("#");
}

export interface ChannelKind {
  /** Needs authorization beyond knowing the app key. */
  private: boolean;
  /** Membership is tracked (user level). */
  presence: boolean;
  /** Payloads are end-to-end encrypted: the server relays them and never interprets them. */
  encrypted: boolean;
  /** The last event is sent on subscribe (Pusher cache channels). */
  cache: boolean;
}

export function channelKind(name: string): ChannelKind {
  const presence = name.startsWith("presence-");
  const encrypted = name.startsWith("private-encrypted-");
  const cache =
    name.startsWith("cache-") ||
    name.startsWith("private-cache-") ||
    name.startsWith("presence-cache-") ||
    name.includes("#cache");
  return { private: presence || name.startsWith("private-"), presence, encrypted, cache };
}

/**
 * Whether `channel` is granted by a list of patterns from a token: exact
 * names, `*` for everything, or a prefix ending in `*`.
 */
export function channelAllowed(channel: string, patterns: readonly string[]): boolean {
  for (const p of patterns) {
    if (p === channel || p === "*") return true;
    if (p.endsWith("*") && channel.startsWith(p.slice(0, -1))) return true;
  }
  return false;
}

/** Longest user or client id accepted from a token or signed user data. */
export const MAX_USER_ID_LENGTH = 200;

/**
 * User ids become NATS subject tokens and KV keys (encoded, so any
 * character is safe), but an unbounded one could outgrow NATS's control
 * line and cut the gateway's connection; control characters have no
 * business in an id either.
 */
export function isValidUserId(id: unknown): id is string {
  return (
    typeof id === "string" &&
    id.length > 0 &&
    id.length <= MAX_USER_ID_LENGTH &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to refuse them
    !/[\u0000-\u001f\u007f]/.test(id)
  );
}

export const USER_ID_RULE = `1-${MAX_USER_ID_LENGTH} characters, no control characters`;
