import { TokenError, verifyJwt } from "../../../../../shared/src/auth/jwt.js";
import { isValidUserId, USER_ID_RULE } from "../../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import { EngineUnavailableError } from "../../../../../shared/src/engine/engine.js";
import type { Signal } from "../../../../../shared/src/model.js";
import type { Connection } from "../../core/connection.js";
import type { Dialect, FrameProblem, GatewayContext } from "../../core/dialect.js";
import { HeldFrames } from "../../core/held-frames.js";
import type { ChannelEncoder } from "../../core/hub.js";
import { TokenBucket } from "../../core/rate.js";
import { runAt } from "../../core/timers.js";
import { type ClientFrame, decode, EPHEMERAL_ID, encode, encodeStored } from "./codec.js";
import { ChatClose, type ChatCode, ChatRequestError } from "./codes.js";
import { AckLog, inboxOf } from "./inbox.js";
import { ChatRequests } from "./requests.js";

interface ChatSession {
  /** Frames sent before the token is checked and the inbox replayed; they run right after. */
  early: HeldFrames;
  acks: AckLog | undefined;
  typing: TokenBucket | undefined;
  /** Highest inbox seq sent on this connection: acks beyond it name nothing we sent. */
  maxDelivered: number;
  /** The token's `exp` in ms; the connection ends there. */
  expiresAtMs: number;
}

/** The Chat dialect at `/chat/:key?token=JWT` (protocols/chat.md). */
export function createChatDialect(ctx: GatewayContext): Dialect {
  const sessions = new WeakMap<Connection, ChatSession>();
  const requests = new ChatRequests(ctx);

  const fail = (conn: Connection, id: string | null, code: ChatCode, message: string) => {
    ctx.metrics.errors.inc({ dialect: "chat", code });
    conn.send(encode.error(id, Date.now(), code, message));
  };

  const authFail = (conn: Connection, message: string) => {
    ctx.metrics.errors.inc({ dialect: "chat", code: "auth_failed" });
    conn.close(ChatClose.authFailed, message);
  };

  const expire = (conn: Connection) => {
    ctx.metrics.errors.inc({ dialect: "chat", code: "auth_failed" });
    conn.close(ChatClose.authFailed, "token expired");
  };

  const run = (conn: Connection, s: ChatSession, text: string) => {
    // A frame can beat the expiry timer (a busy loop runs timers late); it must not run.
    if (Date.now() >= s.expiresAtMs) return expire(conn);
    const decoded = decode(text);
    if (!decoded.ok) return fail(conn, decoded.id, decoded.code, decoded.message);
    handle(conn, s, decoded.frame);
  };

  const handle = (conn: Connection, s: ChatSession, frame: ClientFrame) => {
    const app = conn.app!;
    const me = conn.userId!;
    switch (frame.type) {
      case "ack":
        if (frame.seq === EPHEMERAL_ID) return;
        if (frame.seq > s.maxDelivered)
          return fail(conn, null, "invalid_payload", `event ${frame.seq} was not sent to you`);
        s.acks?.ack(frame.seq);
        return;
      case "typing":
        if (frame.chatId === me) return fail(conn, null, "invalid_payload", "chatId is yourself");
        if (!s.typing?.take()) return fail(conn, null, "rate_limited", "too many typing events");
        ctx.engine.signalUser(app.id, frame.chatId, {
          kind: "typing",
          userId: me,
          active: true,
          excludeConnectionId: conn.id,
        });
        return;
      case "request": {
        const { id, request } = frame;
        requests.handle(app.id, me, request, Date.now()).then(
          (payload) => conn.send(encode.response(id, Date.now(), payload)),
          (err: unknown) => {
            if (conn.closed) return;
            if (err instanceof ChatRequestError) return fail(conn, id, err.code, err.message);
            if (err instanceof EngineUnavailableError)
              return fail(conn, id, "internal", "storage temporarily unavailable; retry");
            conn.log.error({ err, payloadType: request.payloadType }, "chat request failed");
            fail(conn, id, "internal", "internal error");
          },
        );
        return;
      }
    }
  };

  /** Ephemeral events reach the user through its user subject, never the inbox. */
  const onUserSignal = (conn: Connection, signal: Signal) => {
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
  };

  const authenticate = async (conn: Connection, s: ChatSession) => {
    const app = conn.upgrade.app;
    const token = conn.upgrade.query.get("token");
    if (!app) return authFail(conn, "unknown app key");
    if (!token) return authFail(conn, "token is required");
    let userId: string;
    let contacts: string[];
    let expiresAtMs: number;
    try {
      ({ userId, contacts, expiresAtMs } = await verifyChatToken(token, app));
    } catch (err) {
      if (err instanceof TokenError) return authFail(conn, err.message);
      throw err;
    }
    if (conn.closed) return;
    if (!conn.setApp(app)) {
      fail(conn, null, "rate_limited", "app is over its connection quota");
      return conn.close(ChatClose.tryAgainLater, "over connection quota");
    }
    conn.userId = userId;
    s.expiresAtMs = expiresAtMs;
    conn.onClose(runAt(expiresAtMs, () => expire(conn)));
    s.typing = new TokenBucket(app.limits.clientEventRate, app.limits.clientEventRate * 2);
    s.acks = new AckLog(ctx.engine.kv(app.id, "chat"), userId, conn.log);
    await ctx.users.add(conn, app.id, userId, (signal) => onUserSignal(conn, signal));
    await joinInbox(conn, s, userId);
    if (conn.closed) return;
    await ctx.presence.connectionOpened(app.id, conn.id, userId, contacts);
    s.early.release((text) => run(conn, s, text));
  };

  /**
   * Replays every unacked inbox event, oldest first, then goes live; the hub
   * switches over without a duplicate or a gap. What the replay saw moves
   * the ack floor up, keeping the acked list short.
   */
  const joinInbox = async (conn: Connection, s: ChatSession, userId: string) => {
    const acks = s.acks!;
    const state = await acks.load();
    const acked = new Set(state.acked);
    const seen = { firstUnacked: undefined as number | undefined, maxSeen: state.floor };
    // Not a shared topic: each connection tracks what it was sent, for its acks.
    const encoder: ChannelEncoder = {
      encode: (_channel, d) => {
        if (d.type !== "event") return null;
        s.maxDelivered = Math.max(s.maxDelivered, d.event.seq);
        return encodeStored(d.event);
      },
    };
    await ctx.hub.join(conn, inboxOf(userId), encoder, {
      afterSeq: state.floor,
      skip: (e) => {
        seen.maxSeen = Math.max(seen.maxSeen, e.seq);
        if (acked.has(e.seq)) return true;
        seen.firstUnacked ??= e.seq;
        return false;
      },
    });
    await acks.compact(seen);
  };

  return {
    name: "chat",
    route: "/chat/:key",
    appKeyOf: (param) => param,
    open(conn) {
      const s: ChatSession = {
        early: new HeldFrames(),
        acks: undefined,
        typing: undefined,
        maxDelivered: 0,
        expiresAtMs: 0,
      };
      sessions.set(conn, s);
      authenticate(conn, s).catch((err: unknown) => {
        if (conn.closed) return;
        conn.log.error({ err }, "chat connection setup failed");
        // The client cannot be told it is connected without its inbox: let it retry.
        conn.close(ChatClose.tryAgainLater, "internal error; reconnect");
      });
    },
    message(conn, text) {
      const s = sessions.get(conn);
      if (!s) return;
      const held = s.early.offer(text);
      if (held === "full")
        fail(conn, null, "rate_limited", "too many frames before the inbox is ready");
      else if (held === "run") run(conn, s, text);
    },
    reject(conn, problem: FrameProblem) {
      if (problem === "rate_limited") return fail(conn, null, "rate_limited", "too many frames");
      if (problem === "too_large") return fail(conn, null, "invalid_payload", "frame too large");
      if (problem === "oversized") return conn.close(ChatClose.tooLarge, "frame too large");
      return fail(conn, null, "invalid_payload", "frame is not valid UTF-8");
    },
    slowConsumer(conn) {
      conn.close(ChatClose.slowConsumer, "slow consumer: reconnect; unacked events come again");
    },
    drain(conn) {
      conn.close(ChatClose.goingAway, "server restarting: reconnect");
    },
    deliveryGap(conn) {
      conn.close(
        ChatClose.goingAway,
        "live delivery interrupted: reconnect; unacked events come again",
      );
    },
    closed(conn) {
      sessions.delete(conn);
      if (!conn.app || !conn.userId) return;
      ctx.presence.connectionClosed(conn.app.id, conn.id).catch((err: unknown) => {
        conn.log.warn({ err }, "presence close report failed");
      });
    },
  };
}

/** `sub` is the user; `contacts` the users whose online/offline it receives. */
async function verifyChatToken(
  token: string,
  app: AppConfig,
): Promise<{ userId: string; contacts: string[]; expiresAtMs: number }> {
  const claims = await verifyJwt(token, app);
  const sub = claims.sub;
  if (typeof sub !== "string" || sub === "") throw new TokenError("token has no sub");
  if (!isValidUserId(sub)) throw new TokenError(`sub must be ${USER_ID_RULE}`);
  const contacts = claims.contacts ?? [];
  if (!Array.isArray(contacts) || !contacts.every(isValidUserId))
    throw new TokenError(`token claim contacts must be an array of user ids (${USER_ID_RULE})`);
  return { userId: sub, contacts, expiresAtMs: claims.exp! * 1000 };
}
