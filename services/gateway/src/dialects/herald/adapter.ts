import { TokenError } from "../../../../../shared/src/auth/jwt.js";
import type { Connection } from "../../core/connection.js";
import { defineDialect, type Failure, type Run } from "../../core/define-dialect.js";
import type { Dialect, DialectContext } from "../../core/dialect.js";
import { HeldFrames } from "../../core/held-frames.js";
import { TokenBucket } from "../../core/rate.js";
import type { UserSession } from "../../core/session.js";
import { runAt } from "../../core/timers.js";
import { decode, encode, encodeUserSignal, type Ref } from "./codec.js";
import { HeraldClose, type HeraldCode, HeraldRequestError } from "./codes.js";
import { HeraldCommands } from "./commands.js";
import type { HeraldConnection, HeraldSession } from "./state.js";
import { verifyHeraldToken } from "./token.js";

/** The Herald dialect at `/ws?key=&token=&user_id=&streams=`. */
export function createHeraldDialect(ctx: DialectContext): Dialect {
  const commands = new HeraldCommands(ctx);

  const send = (conn: Connection, ref: Ref, code: HeraldCode, message: string) => {
    ctx.metrics.errors.inc({ dialect: "herald", code });
    conn.send(encode.error(ref, code, message));
  };

  const failure = (f: Failure<HeraldRequestError>): [HeraldCode, string] => {
    switch (f.kind) {
      case "request":
        return [f.error.code, f.error.message];
      case "refused":
        return f.reason === "channel_full"
          ? ["stream_full", `stream ${f.channel} is full`]
          : ["rate_limited", f.message];
      default:
        return ["internal", f.message];
    }
  };

  const authFail = (conn: Connection, message: string) => {
    ctx.metrics.errors.inc({ dialect: "herald", code: "auth_failed" });
    conn.send(encode.authError(message));
    conn.close(HeraldClose.authFailed, message);
  };

  const authenticate = async (conn: Connection, s: HeraldConnection, run: Run<Ref>) => {
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
      s.early.release((text) => handle(conn, s, text, run));
    } catch (err) {
      if (err instanceof TokenError) return authFail(conn, err.message);
      conn.log.error({ err }, "herald auth failed unexpectedly");
      return authFail(conn, "internal error");
    }
  };

  const handle = (conn: Connection, s: HeraldConnection, text: string, run: Run<Ref>) => {
    const h = s.ready;
    if (!h) return;
    const decoded = decode(text);
    if (!decoded.ok) return send(conn, decoded.ref, decoded.code, decoded.message);
    run(decoded.ref, () => commands.handle(h, decoded.ref, decoded.command));
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

  return defineDialect<HeraldConnection, Ref, HeraldRequestError>({
    name: "herald",
    route: "/ws",
    appKeyOf: (_param, query) => query.get("key") ?? undefined,
    isRequestError: (err): err is HeraldRequestError => err instanceof HeraldRequestError,
    open(conn, run) {
      const s: HeraldConnection = { early: new HeldFrames(), ready: undefined };
      void authenticate(conn, s, run);
      return s;
    },
    message(conn, s, text, run) {
      const held = s.early.offer(text);
      if (held === "full") send(conn, undefined, "rate_limited", "too many frames before auth_ok");
      else if (held === "run") handle(conn, s, text, run);
    },
    fail(conn, _s, ref, f) {
      const [code, message] = failure(f);
      send(conn, ref, code, message);
    },
    reject(conn, _s, problem) {
      if (problem === "rate_limited")
        return send(conn, undefined, "rate_limited", "too many messages");
      if (problem === "too_large")
        return send(conn, undefined, "invalid_payload", "frame too large");
      if (problem === "oversized") return conn.close(HeraldClose.tooLarge, "frame too large");
      return send(conn, undefined, "invalid_payload", "frame is not valid UTF-8");
    },
    slowConsumer: [HeraldClose.slowConsumer, "slow consumer: reconnect and replay with last_seq"],
    drain: [HeraldClose.goingAway, "server restarting: reconnect"],
    deliveryGap: [
      HeraldClose.goingAway,
      "live delivery interrupted: reconnect and replay with last_seq",
    ],
    closed(_conn, s) {
      if (s.ready) commands.closed(s.ready);
    },
  });
}

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}
