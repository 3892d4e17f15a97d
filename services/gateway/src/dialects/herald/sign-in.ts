import { TokenError } from "../../../../../shared/src/auth/jwt.js";
import type { Connection } from "../../core/connection.js";
import type { DialectContext } from "../../core/dialect.js";
import { TokenBucket } from "../../core/rate.js";
import type { UserSession } from "../../core/session.js";
import { runAt } from "../../core/timers.js";
import { encode, encodeUserSignal, type Ref } from "./codec.js";
import { HeraldClose, type HeraldCode } from "./codes.js";
import type { HeraldCommands } from "./commands.js";
import type { HeraldConnection, HeraldSession } from "./state.js";
import { verifyHeraldToken } from "./token.js";

type SendError = (conn: Connection, ref: Ref, code: HeraldCode, message: string) => void;

/**
 * Checks the token in the URL, binds the connection to its app and user,
 * answers `auth_ok` (or `auth_error` and 4001) and then calls `ready`, which
 * runs the frames held meanwhile.
 */
export function createSignIn(
  ctx: Pick<DialectContext, "sessions" | "metrics">,
  commands: HeraldCommands,
  send: SendError,
) {
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

  const authFail = (conn: Connection, message: string) => {
    ctx.metrics.errors.inc({ dialect: "herald", code: "auth_failed" });
    conn.send(encode.authError(message));
    conn.close(HeraldClose.authFailed, message);
  };

  return async (conn: Connection, s: HeraldConnection, ready: () => void): Promise<void> => {
    // The query is the server's only until open returns: read it before any await.
    const q = conn.upgrade.query ?? new URLSearchParams();
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
      const bound = ctx.sessions.bind(conn, app);
      if (!bound) {
        send(conn, undefined, "rate_limited", "app is over its connection quota");
        return conn.close(HeraldClose.tryAgainLater, "over connection quota");
      }
      conn.userId = grant.userId;
      let h: HeraldSession | undefined;
      // Blocks that arrive before the session is ready are kept for its permits.
      const blocked = new Map<string, boolean | Promise<boolean>>();
      const session: UserSession = await bound.identify(grant.userId, (signal) => {
        if (signal.kind === "terminate") return conn.close(HeraldClose.authFailed, "terminated");
        if (signal.kind === "blocked") {
          if (h) commands.blocked(h, signal.channel, signal.blocked);
          else blocked.set(signal.channel, signal.blocked);
          return;
        }
        const frame = encodeUserSignal(signal);
        if (frame) conn.send(frame);
      });
      h = {
        session,
        grant,
        typing: new Map(),
        atLeastOnce: new Set(),
        blocked,
        triggers: new TokenBucket(app.limits.clientEventRate, app.limits.clientEventRate * 2),
      };
      if (conn.closed) return;
      s.ready = h;
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
      session.online(grant.userId, grant.watchlist).then(
        (online) => {
          for (const u of online) {
            const frame = encodeUserSignal({ kind: "watch", userId: u, online: true });
            if (frame) conn.send(frame);
          }
        },
        (err: unknown) =>
          conn.log.warn({ err }, "presence did not take the connection's online report"),
      );
      ready();
    } catch (err) {
      if (err instanceof TokenError) return authFail(conn, err.message);
      conn.log.error({ err }, "herald auth failed unexpectedly");
      return authFail(conn, "internal error");
    }
  };
}

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}
