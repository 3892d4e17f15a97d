import { TokenError } from "../../../../../shared/src/auth/jwt.js";
import type { Connection } from "../../core/connection.js";
import type { DialectContext, DialectSettings } from "../../core/dialect.js";
import type { KeepalivePolicy } from "../../core/keepalive.js";
import { runAt } from "../../core/timers.js";
import { type FoonyGrant, verifyCredential } from "./auth.js";
import { type ClientFrame, encode } from "./codec.js";
import { FoonyClose, type FoonyCode, FoonyError } from "./codes.js";
import type { FoonyConnection } from "./state.js";

/** The spec's window for the first frame. */
const AUTH_TIMEOUT_MS = 10_000;

/** Answers a request with `err` (and counts it). */
export type SendError = (
  conn: Connection,
  id: number | undefined,
  code: FoonyCode,
  message: string,
) => void;

/**
 * Foony's sign-in: the first frame is `auth` (within 10 s), its credential
 * names the app, and `connected` answers it; then the keep-alive watch and
 * the token's expiry run until the connection closes.
 */
export function createHandshake(
  ctx: DialectContext,
  settings: Pick<DialectSettings, "activityTimeoutSec">,
  sendError: SendError,
) {
  const keepAliveMs = settings.activityTimeoutSec * 1000;

  /** Auth problems end the connection: the client needs other credentials. */
  const refuse = (conn: Connection, code: FoonyCode, message: string, close: number) => {
    sendError(conn, undefined, code, message);
    conn.close(close, message);
  };

  /** Starts the first frame's window. */
  const open = (conn: Connection, s: FoonyConnection) => {
    const timer = setTimeout(() => {
      if (!s.ready) refuse(conn, FoonyError.badAuth, "no auth within 10 s", FoonyClose.authFailed);
    }, AUTH_TIMEOUT_MS);
    conn.onClose(() => clearTimeout(timer));
  };

  /** Verifies `auth`; once `connected` is sent, `onReady` runs the frames held meanwhile. */
  const authenticate = async (
    conn: Connection,
    s: FoonyConnection,
    f: ClientFrame & { t: "auth" },
    onReady: () => void,
  ) => {
    let grant: FoonyGrant;
    try {
      grant = await verifyCredential(ctx.apps, f);
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
    const session = ctx.sessions.bind(conn, app);
    if (!session) {
      return refuse(
        conn,
        FoonyError.server,
        "app is over its connection quota; try again later",
        FoonyClose.tryAgainLater,
      );
    }
    const clientId =
      grant.clientId ?? (grant.expiresAtMs === undefined ? f.clientId : undefined) ?? conn.id;
    s.ready = { session, clientId, capability: grant.capability, entered: new Map() };
    conn.send(encode.connected(conn.id, keepAliveMs, clientId));
    watchSilence(conn);
    if (grant.expiresAtMs !== undefined) scheduleExpiry(conn, grant.expiresAtMs);
    onReady();
  };

  /** Closes a client silent for 2 x keepAliveMs (the server's silence sweep runs it). */
  const silence: KeepalivePolicy = {
    idleMs: 2 * keepAliveMs,
    idle: (conn) => conn.close(FoonyClose.idle, "no frame for 2 x keepAliveMs"),
  };
  const watchSilence = (conn: Connection) => {
    conn.keepalive = silence;
  };

  const scheduleExpiry = (conn: Connection, atMs: number) => {
    const cancel = runAt(atMs, () =>
      refuse(conn, FoonyError.authExpired, "token expired", FoonyClose.authExpired),
    );
    conn.onClose(cancel);
  };

  return { open, authenticate, refuse };
}
