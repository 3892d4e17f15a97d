import { TokenError } from "../../../../../shared/src/auth/jwt.js";
import { EngineUnavailableError } from "../../../../../shared/src/engine/engine.js";
import type { Connection } from "../../core/connection.js";
import type { Dialect, FrameProblem, GatewayContext } from "../../core/dialect.js";
import { HeldFrames } from "../../core/held-frames.js";
import { TokenBucket } from "../../core/rate.js";
import { runAt } from "../../core/timers.js";
import { type Command, decode, encode, encodeUserSignal, type Ref } from "./codec.js";
import { HeraldClose, type HeraldCode, HeraldRequestError } from "./codes.js";
import { HeraldCommands, type HeraldSession } from "./commands.js";
import { verifyHeraldToken } from "./token.js";

/** Frames a client may send before its token is checked; they run right after auth_ok. */

/** The Herald dialect at `/ws?key=&token=&user_id=&streams=`. */
export function createHeraldDialect(ctx: GatewayContext): Dialect {
  const sessions = new WeakMap<Connection, HeraldSession>();
  const commands = new HeraldCommands(ctx);

  const fail = (conn: Connection, ref: Ref, code: HeraldCode, message: string) => {
    ctx.metrics.errors.inc({ dialect: "herald", code });
    conn.send(encode.error(ref, code, message));
  };

  const authFail = (conn: Connection, message: string) => {
    ctx.metrics.errors.inc({ dialect: "herald", code: "auth_failed" });
    conn.send(encode.authError(message));
    conn.close(HeraldClose.authFailed, message);
  };

  const run = (conn: Connection, s: HeraldSession, text: string) => {
    const decoded = decode(text);
    if (!decoded.ok) return fail(conn, decoded.ref, decoded.code, decoded.message);
    const { ref, command } = decoded;
    commands.handle(conn, s, ref, command).catch((err: unknown) => {
      if (conn.closed) return;
      if (err instanceof HeraldRequestError) return fail(conn, ref, err.code, err.message);
      if (err instanceof EngineUnavailableError) {
        return fail(conn, ref, "internal", "storage temporarily unavailable; retry");
      }
      conn.log.error({ err, type: command.type }, "herald request failed");
      fail(conn, ref, "internal", "internal error");
    });
  };

  const authenticate = async (conn: Connection, s: HeraldSession) => {
    const q = conn.upgrade.query;
    const app = conn.upgrade.app;
    const token = q.get("token");
    if (!app) return authFail(conn, "unknown key");
    if (!token) return authFail(conn, "token is required");
    try {
      const grant = await verifyHeraldToken(
        app,
        token,
        q.get("user_id"),
        q.get("streams"),
        nowSec(),
      );
      if (conn.closed) return;
      if (!conn.setApp(app)) {
        fail(conn, undefined, "rate_limited", "app is over its connection quota");
        return conn.close(HeraldClose.tryAgainLater, "over connection quota");
      }
      conn.userId = grant.userId;
      s.grant = grant;
      s.triggers = new TokenBucket(app.limits.clientEventRate, app.limits.clientEventRate * 2);
      await ctx.users.add(conn, grant.userId, (signal) => {
        if (signal.kind === "terminate") return conn.close(HeraldClose.authFailed, "terminated");
        if (signal.kind === "blocked")
          return commands.blocked(conn, s, signal.channel, signal.blocked);
        const frame = encodeUserSignal(signal);
        if (frame) conn.send(frame);
      });
      if (conn.closed) return;
      // auth_ok once the session can serve, so a client that waits for it never
      // runs into the bound on frames held before it. Presence is not awaited:
      // its reports are queued in order (this one before any subscribe), and a
      // presence failover must not hold up new connections.
      conn.send(
        encode.authOk({
          connection_id: conn.id,
          user_id: grant.userId,
          streams: grant.streams,
          expires_at: grant.expiresAt,
        }),
      );
      scheduleExpiry(conn, grant.expiresAt);
      void announceOnline(conn, app.id, grant.userId, grant.watchlist);
      s.early.release((text) => run(conn, s, text));
    } catch (err) {
      if (err instanceof TokenError) return authFail(conn, err.message);
      conn.log.error({ err }, "herald auth failed unexpectedly");
      return authFail(conn, "internal error");
    }
  };

  /** Marks the user online and tells it which watched users are online already. */
  const announceOnline = async (
    conn: Connection,
    appId: string,
    userId: string,
    watchlist: readonly string[],
  ) => {
    try {
      await ctx.presence.connectionOpened(appId, conn.id, userId, watchlist);
      const statuses = await Promise.all(watchlist.map((u) => ctx.presence.status(appId, u)));
      watchlist.forEach((u, i) => {
        if (statuses[i] !== "offline")
          conn.send(encodeUserSignal({ kind: "watch", userId: u, online: true })!);
      });
    } catch (err) {
      conn.log.warn({ err }, "presence did not take the connection's online report");
    }
  };

  const scheduleExpiry = (conn: Connection, expiresAt: number) => {
    const cancelWarning = runAt(expiresAt * 1000 - 60_000, () =>
      conn.send(encode.tokenExpiring(expiresAt)),
    );
    const cancelExpiry = runAt(expiresAt * 1000, () => {
      conn.send(encode.error(undefined, "auth_failed", "token expired"));
      conn.close(HeraldClose.authFailed, "token expired");
    });
    conn.onClose(() => {
      cancelWarning();
      cancelExpiry();
    });
  };

  return {
    name: "herald",
    route: "/ws",
    appKeyOf: (_param, query) => query.get("key") ?? undefined,
    open(conn) {
      const s: HeraldSession = {
        grant: undefined,
        early: new HeldFrames(),
        typing: new Map(),
        atLeastOnce: new Set(),
        streamOps: new Map(),
        joining: new Set(),
        blocked: new Map(),
        triggers: new TokenBucket(100, 100),
      };
      sessions.set(conn, s);
      void authenticate(conn, s);
    },
    message(conn, text) {
      const s = sessions.get(conn);
      if (!s) return;
      const held = s.early.offer(text);
      if (held === "full") fail(conn, undefined, "rate_limited", "too many frames before auth_ok");
      else if (held === "run") run(conn, s, text);
    },
    reject(conn, problem: FrameProblem) {
      if (problem === "rate_limited")
        return fail(conn, undefined, "rate_limited", "too many messages");
      if (problem === "too_large")
        return fail(conn, undefined, "invalid_payload", "frame too large");
      if (problem === "oversized") return conn.close(HeraldClose.tooLarge, "frame too large");
      return fail(conn, undefined, "invalid_payload", "frame is not valid UTF-8");
    },
    slowConsumer(conn) {
      conn.close(HeraldClose.slowConsumer, "slow consumer: reconnect and replay with last_seq");
    },
    drain(conn) {
      conn.close(HeraldClose.goingAway, "server restarting: reconnect");
    },
    deliveryGap(conn) {
      conn.close(
        HeraldClose.goingAway,
        "live delivery interrupted: reconnect and replay with last_seq",
      );
    },
    closed(conn) {
      const s = sessions.get(conn);
      if (!s) return;
      sessions.delete(conn);
      commands.closed(conn, s);
    },
  };
}

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

export type { Command };
