import { TokenError } from "../../../../../shared/src/auth/jwt.js";
import type { Signal } from "../../../../../shared/src/model.js";
import type { Connection } from "../../core/connection.js";
import type { DialectContext } from "../../core/dialect.js";
import type { ChannelEncoder } from "../../core/hub.js";
import { TokenBucket } from "../../core/rate.js";
import { runAt } from "../../core/timers.js";
import { encode, encodeStored } from "./codec.js";
import { ChatClose } from "./codes.js";
import { AckLog, inboxOf } from "./inbox.js";
import type { ChatReplies } from "./replies.js";
import type { ChatConnection, ChatSession } from "./state.js";
import { type ChatGrant, verifyChatToken } from "./token.js";

/**
 * Verifies the token, binds the connection to its app and user, replays
 * the inbox and reports the user online; then `s.ready` is set and the
 * frames held meanwhile run (`release`). Resolves early, with the
 * connection closed, when the token or the app's quota refuses it.
 */
export async function signIn(
  ctx: Pick<DialectContext, "sessions">,
  replies: ChatReplies,
  conn: Connection,
  s: ChatConnection,
  release: () => void,
): Promise<void> {
  const app = conn.upgrade.app;
  // Read before any await: the server drops the query once open returns.
  const token = conn.upgrade.query?.get("token");
  if (!app) return replies.authFailed(conn, "unknown app key");
  if (!token) return replies.authFailed(conn, "token is required");
  let grant: ChatGrant;
  try {
    grant = await verifyChatToken(token, app);
  } catch (err) {
    if (err instanceof TokenError) return replies.authFailed(conn, err.message);
    throw err;
  }
  if (conn.closed) return;
  const bound = ctx.sessions.bind(conn, app);
  if (!bound) {
    replies.error(conn, null, "rate_limited", "app is over its connection quota");
    return conn.close(ChatClose.tryAgainLater, "over connection quota");
  }
  const { userId, contacts, expiresAtMs } = grant;
  conn.userId = userId;
  conn.onClose(runAt(expiresAtMs, () => replies.expired(conn)));
  const session = await bound.identify(userId, (signal) => onUserSignal(conn, signal));
  const c: ChatSession = {
    session,
    acks: new AckLog(session.store("chat"), userId, conn.log),
    typing: new TokenBucket(app.limits.clientEventRate, app.limits.clientEventRate * 2),
    maxDelivered: 0,
    expiresAtMs,
  };
  await joinInbox(c);
  if (conn.closed) return;
  // Chat tells only changes (protocols/chat.md): no lookup of contacts online already.
  await session.reportOnline(userId, contacts);
  s.ready = c;
  release();
}

/** Ephemeral events reach the user through its user subject, never the inbox. */
function onUserSignal(conn: Connection, signal: Signal): void {
  switch (signal.kind) {
    case "typing":
      conn.send(encode.typing(Date.now(), signal.userId));
      return;
    case "watch":
      conn.send(encode.online(Date.now(), signal.userId, signal.online));
      return;
    case "terminate":
      conn.close(ChatClose.authFailed, "terminated");
      return;
    default:
      return;
  }
}

/**
 * Replays every unacked inbox event, oldest first, then goes live; the hub
 * switches over without a duplicate or a gap. What the replay saw moves
 * the ack floor up, keeping the acked list short.
 */
async function joinInbox(c: ChatSession): Promise<void> {
  const { session, acks } = c;
  const state = await acks.load();
  const acked = new Set(state.acked);
  const seen = { firstUnacked: undefined as number | undefined, maxSeen: state.floor };
  // Not a shared topic: each connection tracks what it was sent, for its acks.
  const encoder: ChannelEncoder = {
    encode: (_channel, d) => {
      if (d.type !== "event") return null;
      c.maxDelivered = Math.max(c.maxDelivered, d.event.seq);
      return encodeStored(d.event);
    },
  };
  await session.join(inboxOf(session.userId), {
    encoder,
    afterSeq: state.floor,
    skip: (e) => {
      seen.maxSeen = Math.max(seen.maxSeen, e.seq);
      if (acked.has(e.seq)) return true;
      seen.firstUnacked ??= e.seq;
      return false;
    },
    // The inbox is the server's own channel: no occupancy, counts or webhooks for it.
    presence: false,
  });
  await acks.compact(seen);
}
