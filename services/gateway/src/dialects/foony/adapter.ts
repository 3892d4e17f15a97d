import { TokenError } from "../../../../../shared/src/auth/jwt.js";
import { EngineUnavailableError } from "../../../../../shared/src/engine/engine.js";
import type { Connection } from "../../core/connection.js";
import type { Dialect, FrameProblem, GatewayContext } from "../../core/dialect.js";
import { HeldFrames } from "../../core/held-frames.js";
import { runAt } from "../../core/timers.js";
import { type FoonyGrant, verifyKey, verifyToken } from "./auth.js";
import { type ClientFrame, decode, encode } from "./codec.js";
import { FoonyClose, type FoonyCode, FoonyError, FoonyRequestError } from "./codes.js";
import { FoonyCommands, type FoonySession } from "./commands.js";

/** The spec's window for the first frame. */
const AUTH_TIMEOUT_MS = 10_000;

/** The Foony dialect at `/realtime`: the app is named by the first (`auth`) frame. */
export function createFoonyDialect(ctx: GatewayContext): Dialect {
  const sessions = new WeakMap<Connection, FoonySession>();
  const commands = new FoonyCommands(ctx);
  const keepAliveMs = ctx.config.activityTimeoutSec * 1000;

  const fail = (conn: Connection, id: number | undefined, code: FoonyCode, message: string) => {
    ctx.metrics.errors.inc({ dialect: "foony", code: String(code) });
    conn.send(encode.err(id, code, message));
  };

  /** Auth problems end the connection: the client needs other credentials. */
  const refuse = (conn: Connection, code: FoonyCode, message: string, close: number) => {
    fail(conn, undefined, code, message);
    conn.close(close, message);
  };

  const run = (conn: Connection, s: FoonySession, text: string) => {
    const decoded = decode(text);
    if (!decoded.ok) return fail(conn, decoded.id, decoded.code, decoded.message);
    const f = decoded.frame;
    if (f.t === "auth") return fail(conn, undefined, FoonyError.badFrame, "already authenticated");
    const id = "id" in f ? f.id : undefined;
    commands.handle(conn, s, f).catch((err: unknown) => {
      if (conn.closed) return;
      if (err instanceof FoonyRequestError) return fail(conn, id, err.code, err.message);
      if (err instanceof EngineUnavailableError)
        return fail(conn, id, FoonyError.server, "storage temporarily unavailable; retry");
      conn.log.error({ err, t: f.t }, "foony request failed");
      fail(conn, id, FoonyError.server, "internal error");
    });
  };

  const authenticate = async (
    conn: Connection,
    s: FoonySession,
    f: ClientFrame & { t: "auth" },
  ) => {
    let grant: FoonyGrant;
    try {
      grant =
        f.key !== undefined ? verifyKey(ctx.apps, f.key) : await verifyToken(ctx.apps, f.token!);
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      return err.expired
        ? refuse(conn, FoonyError.authExpired, err.message, FoonyClose.authExpired)
        : refuse(conn, FoonyError.badAuth, err.message, FoonyClose.authFailed);
    }
    if (conn.closed) return;
    // A token names its client; the frame may repeat that name, never change it.
    if (
      grant.expiresAtMs !== undefined &&
      f.clientId !== undefined &&
      f.clientId !== grant.clientId
    )
      return refuse(
        conn,
        FoonyError.badAuth,
        "clientId does not match the token",
        FoonyClose.authFailed,
      );
    const app = grant.app;
    // /realtime names no app, so the server could not check Origin at upgrade.
    if (app.allowedOrigins.length > 0 && !app.allowedOrigins.includes(conn.upgrade.origin))
      return refuse(conn, FoonyError.badAuth, "origin not allowed", FoonyClose.authFailed);
    if (!conn.setApp(app)) {
      return refuse(
        conn,
        FoonyError.server,
        "app is over its connection quota; try again later",
        FoonyClose.tryAgainLater,
      );
    }
    s.clientId =
      grant.clientId ?? (grant.expiresAtMs === undefined ? f.clientId : undefined) ?? conn.id;
    s.capability = grant.capability;
    s.state = "ready";
    conn.send(encode.connected(conn.id, keepAliveMs, s.clientId));
    watchSilence(conn);
    if (grant.expiresAtMs !== undefined) scheduleExpiry(conn, grant.expiresAtMs);
    s.early.release((text) => run(conn, s, text));
  };

  const watchSilence = (conn: Connection) => {
    const limit = 2 * keepAliveMs;
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      const silent = Date.now() - conn.lastSeenAt;
      if (silent >= limit) return conn.close(FoonyClose.idle, "no frame for 2 x keepAliveMs");
      timer = setTimeout(check, limit - silent);
    };
    check();
    conn.onClose(() => clearTimeout(timer));
  };

  const scheduleExpiry = (conn: Connection, atMs: number) => {
    const cancel = runAt(atMs, () =>
      refuse(conn, FoonyError.authExpired, "token expired", FoonyClose.authExpired),
    );
    conn.onClose(cancel);
  };

  return {
    name: "foony",
    route: "/realtime",
    open(conn) {
      const s: FoonySession = {
        state: "awaiting",
        early: new HeldFrames(),
        clientId: conn.id,
        capability: new Map(),
        entered: new Map(),
        registered: false,
      };
      sessions.set(conn, s);
      const timer = setTimeout(() => {
        if (s.state !== "ready")
          refuse(conn, FoonyError.badAuth, "no auth within 10 s", FoonyClose.authFailed);
      }, AUTH_TIMEOUT_MS);
      conn.onClose(() => clearTimeout(timer));
    },
    message(conn, text) {
      const s = sessions.get(conn);
      if (!s) return;
      if (s.state === "ready") return run(conn, s, text);
      if (s.state === "authing") {
        if (s.early.offer(text) === "full")
          fail(conn, undefined, FoonyError.badFrame, "too many frames before connected");
        return;
      }
      const decoded = decode(text);
      if (!decoded.ok || decoded.frame.t !== "auth") {
        const why = decoded.ok ? "first frame must be auth" : `first frame: ${decoded.message}`;
        return refuse(conn, FoonyError.badAuth, why, FoonyClose.authFailed);
      }
      s.state = "authing";
      authenticate(conn, s, decoded.frame).catch((err: unknown) => {
        conn.log.error({ err }, "foony auth failed unexpectedly");
        refuse(conn, FoonyError.server, "internal error", FoonyClose.authFailed);
      });
    },
    reject(conn, problem: FrameProblem) {
      if (problem === "oversized") return conn.close(FoonyClose.tooLarge, "frame too large");
      const message =
        problem === "rate_limited"
          ? "too many frames; slow down"
          : problem === "too_large"
            ? "frame too large"
            : "frame is not valid UTF-8";
      if (sessions.get(conn)?.state === "awaiting")
        return refuse(conn, FoonyError.badAuth, `first frame: ${message}`, FoonyClose.authFailed);
      fail(conn, undefined, FoonyError.badFrame, message);
    },
    slowConsumer(conn) {
      conn.close(FoonyClose.slowConsumer, "slow consumer: reconnect and resume with lastMessageId");
    },
    drain(conn) {
      conn.close(FoonyClose.goingAway, "server restarting: reconnect and resume");
    },
    deliveryGap(conn) {
      conn.close(
        FoonyClose.goingAway,
        "live delivery interrupted: reconnect and resume with lastMessageId",
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
