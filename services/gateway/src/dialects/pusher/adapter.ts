import { defineDialect } from "../../core/define-dialect.js";
import type { Dialect, DialectContext, DialectSettings } from "../../core/dialect.js";
import { encode } from "./codec.js";
import { PusherClose, PusherErrorCode } from "./codes.js";
import { PusherCommands } from "./commands.js";
import { registerPusherHttp } from "./http-api.js";
import { pusherKeepalive } from "./keepalive.js";
import { codeText, PusherReplies, PusherSubscriptionError } from "./replies.js";
import type { PusherConnection } from "./state.js";

const PROTOCOL = 7;

/** The Pusher protocol 7 dialect at `/app/{key}?protocol=7`, and its HTTP API at `/apps/{id}/...`. */
export function createPusherDialect(ctx: DialectContext, settings: DialectSettings): Dialect {
  const replies = new PusherReplies(ctx.metrics);
  const commands = new PusherCommands(ctx, replies);
  const keepalive = pusherKeepalive(
    replies,
    settings.activityTimeoutSec * 1000,
    settings.pongTimeoutSec * 1000,
  );

  return defineDialect<PusherConnection, undefined, PusherSubscriptionError>({
    name: "pusher",
    route: "/app/:key",
    appKeyOf: (param) => param,
    isRequestError: (err): err is PusherSubscriptionError => err instanceof PusherSubscriptionError,
    open(conn) {
      const app = conn.upgrade.app;
      if (!app) {
        replies.close(conn, PusherClose.unknownApp, conn.upgrade.param.slice(0, 64));
        return undefined;
      }
      const refused = protocolRefusal(conn.upgrade.query?.get("protocol") ?? null);
      const session = refused === undefined ? ctx.sessions.bind(conn, app) : undefined;
      if (!session) {
        replies.close(conn, refused ?? PusherClose.overQuota);
        return undefined;
      }
      conn.send(encode.connectionEstablished(conn.id, settings.activityTimeoutSec));
      conn.keepalive = keepalive;
      // The collections and the client-event bucket are made on first use (state.ts).
      return {
        session,
        pending: undefined,
        presenceIds: undefined,
        clientEvents: undefined,
        user: undefined,
        signingIn: false,
        filters: undefined,
        deltas: undefined,
      };
    },
    message(_conn, s, text, run) {
      commands.handle(s, text, run);
    },
    fail(conn, _s, _ref, f) {
      replies.failed(conn, f);
    },
    reject(conn, _s, problem) {
      if (problem === "oversized") return replies.close(conn, PusherClose.tooLarge);
      if (problem === "too_large")
        return replies.error(conn, PusherErrorCode.rejected, "Client sent message too large");
      if (problem === "rate_limited")
        return replies.error(conn, PusherErrorCode.rejected, "Client sent too many messages");
      replies.error(conn, null, "frame is not valid UTF-8");
    },
    slowConsumer: [PusherClose.overCapacity, codeText(PusherClose.overCapacity)],
    drain: (conn) => replies.close(conn, PusherClose.reconnect, "server restarting"),
    deliveryGap: (conn) => replies.close(conn, PusherClose.reconnect, "live delivery interrupted"),
    registerHttp(app) {
      registerPusherHttp(app, ctx);
    },
  });
}

/** Why the `protocol` query parameter is refused, if it is. */
function protocolRefusal(protocol: string | null): number | undefined {
  if (protocol === null) return PusherClose.noProtocol;
  if (!/^[0-9]{1,6}$/.test(protocol)) return PusherClose.invalidVersion;
  if (Number(protocol) !== PROTOCOL) return PusherClose.unsupportedProtocol;
  return undefined;
}
