import type { Connection } from "../../core/connection.js";
import { defineDialect, type Failure, type Run } from "../../core/define-dialect.js";
import type { Dialect, DialectContext, DialectSettings } from "../../core/dialect.js";
import { HeldFrames } from "../../core/held-frames.js";
import { decode, encode } from "./codec.js";
import { FoonyClose, type FoonyCode, FoonyError, FoonyRequestError } from "./codes.js";
import { handle } from "./commands.js";
import { createHandshake } from "./handshake.js";
import type { FoonyConnection } from "./state.js";

/** A request's `id`, echoed by its `ack`/`err` (a `ping` has none). */
type Ref = number | undefined;

/** The Foony dialect at `/realtime`: the app is named by the first (`auth`) frame. */
export function createFoonyDialect(ctx: DialectContext, settings: DialectSettings): Dialect {
  const sendError = (conn: Connection, id: Ref, code: FoonyCode, message: string) => {
    ctx.metrics.errors.inc({ dialect: "foony", code: String(code) });
    conn.send(encode.err(id, code, message));
  };
  const handshake = createHandshake(ctx, settings, sendError);

  const failure = (f: Failure<FoonyRequestError>): [FoonyCode, string] => {
    if (f.kind === "request") return [f.error.code, f.error.message];
    // Foony counts an over-limit `sub` among bad frames (see codes.ts).
    if (f.kind === "refused" && f.reason === "subscription_limit")
      return [FoonyError.badFrame, f.message];
    return [FoonyError.server, f.message];
  };

  const runFrame = (conn: Connection, s: FoonyConnection, text: string, run: Run<Ref>) => {
    const ready = s.ready;
    if (!ready) return;
    const decoded = decode(text);
    if (!decoded.ok) return sendError(conn, decoded.id, decoded.code, decoded.message);
    const f = decoded.frame;
    if (f.t === "auth")
      return sendError(conn, undefined, FoonyError.badFrame, "already authenticated");
    run("id" in f ? f.id : undefined, () => handle(ready, f));
  };

  /** The first frame: `auth`, or the connection ends. */
  const first = (conn: Connection, s: FoonyConnection, text: string, run: Run<Ref>) => {
    const decoded = decode(text);
    if (!decoded.ok || decoded.frame.t !== "auth") {
      const why = decoded.ok ? "first frame must be auth" : `first frame: ${decoded.message}`;
      return handshake.refuse(conn, FoonyError.badAuth, why, FoonyClose.authFailed);
    }
    s.authing = true;
    const onReady = () => s.early.release((held) => runFrame(conn, s, held, run));
    handshake.authenticate(conn, s, decoded.frame, onReady).catch((err: unknown) => {
      conn.log.error({ err }, "foony auth failed unexpectedly");
      handshake.refuse(conn, FoonyError.server, "internal error", FoonyClose.authFailed);
    });
  };

  return defineDialect<FoonyConnection, Ref, FoonyRequestError>({
    name: "foony",
    route: "/realtime",
    isRequestError: (err): err is FoonyRequestError => err instanceof FoonyRequestError,
    open(conn) {
      const s: FoonyConnection = { authing: false, early: new HeldFrames(), ready: undefined };
      handshake.open(conn, s);
      return s;
    },
    message(conn, s, text, run) {
      if (s.ready) return runFrame(conn, s, text, run);
      if (!s.authing) return first(conn, s, text, run);
      if (s.early.offer(text) === "full")
        sendError(conn, undefined, FoonyError.badFrame, "too many frames before connected");
    },
    fail(conn, _s, id, f) {
      const [code, message] = failure(f);
      sendError(conn, id, code, message);
    },
    reject(conn, s, problem) {
      if (problem === "oversized") return conn.close(FoonyClose.tooLarge, "frame too large");
      const message =
        problem === "rate_limited"
          ? "too many frames; slow down"
          : problem === "too_large"
            ? "frame too large"
            : "frame is not valid UTF-8";
      if (s && !s.ready && !s.authing)
        return handshake.refuse(
          conn,
          FoonyError.badAuth,
          `first frame: ${message}`,
          FoonyClose.authFailed,
        );
      sendError(conn, undefined, FoonyError.badFrame, message);
    },
    slowConsumer: [
      FoonyClose.slowConsumer,
      "slow consumer: reconnect and resume with lastMessageId",
    ],
    drain: [FoonyClose.goingAway, "server restarting: reconnect and resume"],
    deliveryGap: [
      FoonyClose.goingAway,
      "live delivery interrupted: reconnect and resume with lastMessageId",
    ],
  });
}
