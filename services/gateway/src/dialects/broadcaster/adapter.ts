import type { Connection } from "../../core/connection.js";
import { defineDialect, type Failure, type Run } from "../../core/define-dialect.js";
import type { Dialect, DialectContext } from "../../core/dialect.js";
import { MAX_HELD_FRAMES } from "../../core/held-frames.js";
import { decode, encode, type RequestId } from "./codec.js";
import { BroadcasterClose, type BroadcasterCode, BroadcasterRequestError } from "./codes.js";
import { closed, handle } from "./commands.js";
import { registerBroadcasterRest } from "./rest.js";
import { type BroadcasterConnection, newConnection } from "./state.js";

/** Frames a client may send while its `auth` is being verified: as many as before any auth. */
const MAX_WAITING = MAX_HELD_FRAMES;

/** The Broadcaster dialect at `/broadcaster/:key`, plus its REST publish endpoint. */
export function createBroadcasterDialect(ctx: DialectContext): Dialect {
  const sendError = (conn: Connection, id: RequestId, code: BroadcasterCode, message: string) => {
    ctx.metrics.errors.inc({ dialect: "broadcaster", code });
    conn.send(encode.error(id, code, message));
  };

  const failure = (f: Failure<BroadcasterRequestError>): [BroadcasterCode, string] => {
    if (f.kind === "request") return [f.error.code, f.error.message];
    if (f.kind === "refused") return ["FailedPrecondition", f.message];
    return ["Internal", f.message];
  };

  const runFrame = (
    conn: Connection,
    s: BroadcasterConnection,
    text: string,
    run: Run<RequestId>,
  ) => {
    const decoded = decode(text);
    if (!decoded.ok) return sendError(conn, decoded.id, decoded.code, decoded.message);
    const { id, request } = decoded;
    const isAuth = request.method === "auth";
    if (isAuth) s.authing = true;
    const done = run(id, () => handle(s, id, request));
    if (!isAuth) return;
    // Once the auth is answered (its error, too), what waited behind it runs.
    void done.then(() => {
      s.authing = false;
      // In arrival order; a later `auth` among them holds the rest back again.
      for (const waiting of s.waiting.splice(0)) {
        if (s.authing) s.waiting.push(waiting);
        else runFrame(conn, s, waiting, run);
      }
    });
  };

  return defineDialect<BroadcasterConnection, RequestId, BroadcasterRequestError>({
    name: "broadcaster",
    route: "/broadcaster/:key",
    appKeyOf: (param) => param,
    isRequestError: (err): err is BroadcasterRequestError => err instanceof BroadcasterRequestError,
    open(conn) {
      const app = conn.upgrade.app;
      const session = app && ctx.sessions.bind(conn, app);
      if (session) return newConnection(session);
      if (!app) conn.close(BroadcasterClose.unknownApp, "unknown app key");
      else conn.close(BroadcasterClose.tryAgainLater, "over connection quota");
      return undefined;
    },
    message(conn, s, text, run) {
      if (!s.authing) return runFrame(conn, s, text, run);
      if (s.waiting.length >= MAX_WAITING)
        return sendError(
          conn,
          null,
          "FailedPrecondition",
          "too many requests while auth is pending",
        );
      s.waiting.push(text);
    },
    fail(conn, _s, id, f) {
      const [code, message] = failure(f);
      sendError(conn, id, code, message);
    },
    reject(conn, _s, problem) {
      if (problem === "rate_limited")
        return sendError(conn, null, "FailedPrecondition", "too many requests; slow down");
      if (problem === "too_large")
        return sendError(conn, null, "InvalidArgument", "frame too large");
      if (problem === "oversized") return conn.close(BroadcasterClose.tooLarge, "frame too large");
      return sendError(conn, null, "InvalidArgument", "frame is not valid UTF-8");
    },
    slowConsumer: [BroadcasterClose.slowConsumer, "slow consumer: reconnect and subscribe again"],
    drain: [BroadcasterClose.goingAway, "server restarting: reconnect"],
    deliveryGap: [
      BroadcasterClose.goingAway,
      "live delivery interrupted: reconnect and subscribe again",
    ],
    closed(_conn, s) {
      closed(s);
    },
    registerHttp(app) {
      registerBroadcasterRest(app, ctx);
    },
  });
}
