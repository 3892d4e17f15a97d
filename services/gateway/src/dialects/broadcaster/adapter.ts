import { EngineUnavailableError } from "../../../../../shared/src/engine/engine.js";
import type { Connection } from "../../core/connection.js";
import type { Dialect, FrameProblem, GatewayContext } from "../../core/dialect.js";
import { decode, encode, type RequestId } from "./codec.js";
import { BroadcasterClose, type BroadcasterCode, BroadcasterRequestError } from "./codes.js";
import { BroadcasterCommands, type BroadcasterSession, newSession } from "./commands.js";
import { registerBroadcasterRest } from "./rest.js";

/** Frames a client may send while its `auth` is being verified. */
const MAX_WAITING = 64;

/** The Broadcaster dialect at `/broadcaster/:key`, plus its REST publish endpoint. */
export function createBroadcasterDialect(ctx: GatewayContext): Dialect {
  const sessions = new WeakMap<Connection, BroadcasterSession>();
  const commands = new BroadcasterCommands(ctx);

  const fail = (conn: Connection, id: RequestId, code: BroadcasterCode, message: string) => {
    ctx.metrics.errors.inc({ dialect: "broadcaster", code });
    conn.send(encode.error(id, code, message));
  };

  const run = (conn: Connection, s: BroadcasterSession, text: string) => {
    const decoded = decode(text);
    if (!decoded.ok) return fail(conn, decoded.id, decoded.code, decoded.message);
    const { id, request } = decoded;
    const isAuth = request.method === "auth";
    if (isAuth) s.authing = true;
    commands
      .handle(conn, s, id, request)
      .catch((err: unknown) => {
        if (conn.closed) return;
        if (err instanceof BroadcasterRequestError) return fail(conn, id, err.code, err.message);
        if (err instanceof EngineUnavailableError)
          return fail(conn, id, "Internal", "storage temporarily unavailable; retry");
        conn.log.error({ err, method: request.method }, "broadcaster request failed");
        fail(conn, id, "Internal", "internal error");
      })
      .finally(() => {
        if (!isAuth) return;
        s.authing = false;
        // In arrival order; a later `auth` among them holds the rest back again.
        for (const waiting of s.waiting.splice(0)) {
          if (s.authing) s.waiting.push(waiting);
          else run(conn, s, waiting);
        }
      });
  };

  return {
    name: "broadcaster",
    route: "/broadcaster/:key",
    appKeyOf: (param) => param,
    open(conn) {
      const app = conn.upgrade.app;
      if (!app) return conn.close(BroadcasterClose.unknownApp, "unknown app key");
      if (!conn.setApp(app))
        return conn.close(BroadcasterClose.tryAgainLater, "over connection quota");
      sessions.set(conn, newSession());
    },
    message(conn, text) {
      const s = sessions.get(conn);
      if (!s) return;
      if (!s.authing) return run(conn, s, text);
      if (s.waiting.length >= MAX_WAITING)
        return fail(conn, null, "FailedPrecondition", "too many requests while auth is pending");
      s.waiting.push(text);
    },
    reject(conn, problem: FrameProblem) {
      if (problem === "rate_limited")
        return fail(conn, null, "FailedPrecondition", "too many requests; slow down");
      if (problem === "too_large") return fail(conn, null, "InvalidArgument", "frame too large");
      if (problem === "oversized") return conn.close(BroadcasterClose.tooLarge, "frame too large");
      return fail(conn, null, "InvalidArgument", "frame is not valid UTF-8");
    },
    slowConsumer(conn) {
      conn.close(BroadcasterClose.slowConsumer, "slow consumer: reconnect and subscribe again");
    },
    drain(conn) {
      conn.close(BroadcasterClose.goingAway, "server restarting: reconnect");
    },
    deliveryGap(conn) {
      conn.close(
        BroadcasterClose.goingAway,
        "live delivery interrupted: reconnect and subscribe again",
      );
    },
    closed(conn) {
      const s = sessions.get(conn);
      if (!s) return;
      sessions.delete(conn);
      commands.closed(conn, s);
    },
    registerHttp(app) {
      registerBroadcasterRest(app, ctx);
    },
  };
}
