import { TokenError } from "../../../../../shared/src/auth/jwt.js";
import { channelAllowed } from "../../../../../shared/src/channels.js";
import { runAt } from "../../core/timers.js";
import { encode, type RequestId } from "./codec.js";
import { BroadcasterRequestError } from "./codes.js";
import type { BroadcasterConnection } from "./state.js";
import { revoke } from "./subscriptions.js";
import { type BroadcasterGrant, type Scope, verifyBroadcasterToken } from "./token.js";

/**
 * `auth`: the first signs the connection in; a later one refreshes the token
 * (same user), and is also how a backend revokes: what the new token does
 * not allow ends now.
 */
export async function signIn(s: BroadcasterConnection, id: RequestId, token: string) {
  const { session } = s;
  const { conn } = session;
  let grant: BroadcasterGrant;
  try {
    grant = await verifyBroadcasterToken(session.app, token, Date.now());
  } catch (err) {
    if (err instanceof TokenError)
      throw new BroadcasterRequestError("Unauthenticated", err.message);
    throw err;
  }
  if (conn.closed) return;
  // Subscriptions and presence were set up for one user; switching needs a new connection.
  if (conn.userId !== undefined && conn.userId !== grant.userId) {
    throw new BroadcasterRequestError(
      "FailedPrecondition",
      "a refreshed token must be for the same sub; reconnect to switch users",
    );
  }
  conn.userId = grant.userId;
  s.grant = grant;
  s.expired = false;
  scheduleExpiry(s, grant.expiresAtMs);
  for (const channel of [...s.subscriptions.keys()]) {
    const refused = refusal(grant, channel, "subscribe");
    if (refused) revoke(s, channel, refused);
  }
  if (!s.presenceOpened) {
    s.presenceOpened = true;
    await session.online(grant.userId, []);
  }
  conn.send(encode.result(id, { success: true }));
}

/** The connection's grant, if it has one that has not run out. */
export function currentGrant(s: BroadcasterConnection): BroadcasterGrant {
  const g = s.grant;
  if (g && Date.now() < g.expiresAtMs) return g;
  if (g) s.expired = true;
  throw new BroadcasterRequestError(
    "Unauthenticated",
    s.expired ? "token expired; send auth with a fresh token" : "send auth first",
  );
}

export function authorize(
  s: BroadcasterConnection,
  channel: string,
  scope: Scope,
): BroadcasterGrant {
  const g = currentGrant(s);
  const refused = refusal(g, channel, scope);
  if (refused) throw refused;
  return g;
}

/** Why `grant` does not allow `scope` on `channel`, or undefined when it does. */
function refusal(
  grant: BroadcasterGrant,
  channel: string,
  scope: Scope,
): BroadcasterRequestError | undefined {
  if (!grant.scopes.has(scope))
    return new BroadcasterRequestError("PermissionDenied", `token lacks the ${scope} scope`);
  if (!channelAllowed(channel, grant.channels))
    return new BroadcasterRequestError("PermissionDenied", `channel ${channel} is not authorized`);
  return undefined;
}

function scheduleExpiry(s: BroadcasterConnection, atMs: number): void {
  s.cancelExpiry?.();
  s.cancelExpiry = runAt(atMs, () => expire(s));
}

/** The token ran out: nothing more is delivered until the client authenticates again. */
function expire(s: BroadcasterConnection): void {
  s.cancelExpiry?.();
  s.cancelExpiry = undefined;
  s.grant = undefined;
  s.expired = true;
  const expired = new BroadcasterRequestError(
    "Unauthenticated",
    "token expired; send auth with a fresh token",
  );
  for (const channel of [...s.subscriptions.keys()]) revoke(s, channel, expired);
}
