import { EngineUnavailableError } from "../../../../../shared/src/engine/engine.js";
import type { Connection } from "../../core/connection.js";
import type { Dialect, FrameProblem, GatewayContext } from "../../core/dialect.js";
import { TokenBucket } from "../../core/rate.js";
import { decode, encode } from "./codec.js";
import { PusherClose, PusherCodeText, PusherErrorCode, PusherSubscriptionStatus } from "./codes.js";
import { enableDelta } from "./extensions.js";
import { registerPusherHttp } from "./http-api.js";
import { startKeepalive } from "./keepalive.js";
import type { PusherSession } from "./session.js";
import { PusherChannels } from "./subscriptions.js";
import { PusherUsers } from "./user.js";

const PROTOCOL = 7;

/** The Pusher protocol 7 dialect at `/app/{key}?protocol=7`, and its HTTP API at `/apps/{id}/...`. */
export function createPusherDialect(ctx: GatewayContext): Dialect {
  const sessions = new WeakMap<Connection, PusherSession>();
  const channels = new PusherChannels(ctx);
  const users = new PusherUsers(ctx);

  /** Pusher sends the error as a frame, then closes with the same code. */
  const refuse = (conn: Connection, code: number, detail?: string) => {
    const text = PusherCodeText[code] ?? "error";
    ctx.metrics.errors.inc({ dialect: "pusher", code: String(code) });
    conn.send(encode.error(code, detail ? `${text}: ${detail}` : text));
    conn.close(code, text);
  };

  const failed = (conn: Connection, what: string) => (err: unknown) => {
    if (conn.closed) return;
    if (err instanceof EngineUnavailableError) {
      return channels.error(conn, null, "storage temporarily unavailable; retry");
    }
    conn.log.error({ err }, `pusher ${what} failed`);
    channels.error(conn, null, "internal error");
  };

  return {
    name: "pusher",
    route: "/app/:key",
    appKeyOf: (param) => param,
    open(conn) {
      const app = conn.upgrade.app;
      if (!app) return refuse(conn, PusherClose.unknownApp, conn.upgrade.param.slice(0, 64));
      const protocol = conn.upgrade.query.get("protocol");
      if (protocol === null) return refuse(conn, PusherClose.noProtocol);
      if (!/^[0-9]{1,6}$/.test(protocol)) return refuse(conn, PusherClose.invalidVersion);
      if (Number(protocol) !== PROTOCOL) return refuse(conn, PusherClose.unsupportedProtocol);
      if (!conn.setApp(app)) return refuse(conn, PusherClose.overQuota);
      const rate = app.limits.clientEventRate;
      sessions.set(conn, {
        pending: new Set(),
        presenceIds: new Map(),
        clientEvents: new TokenBucket(rate, rate),
        user: undefined,
        signingIn: false,
        filters: new Map(),
        deltas: undefined,
      });
      conn.send(encode.connectionEstablished(conn.id, ctx.config.activityTimeoutSec));
      startKeepalive(
        conn,
        ctx.config.activityTimeoutSec * 1000,
        ctx.config.pongTimeoutSec * 1000,
        () => conn.send(encode.ping()),
        () => refuse(conn, PusherClose.pongTimeout),
      );
    },
    message(conn, text) {
      const s = sessions.get(conn);
      if (!s) return;
      const decoded = decode(text);
      if (!decoded.ok) {
        // A connection-level error for a bad name would leave pusher-js waiting on the channel.
        if (decoded.channel !== undefined)
          return channels.refuse(
            conn,
            decoded.channel,
            "InvalidChannelName",
            decoded.message,
            PusherSubscriptionStatus.invalidChannelName,
          );
        return channels.error(conn, null, decoded.message);
      }
      const c = decoded.command;
      switch (c.type) {
        case "ping":
          conn.send(encode.pong());
          return;
        case "pong":
          return;
        case "subscribe":
          channels.subscribe(conn, s, c).catch(failed(conn, "subscribe"));
          return;
        case "unsubscribe":
          channels.unsubscribe(conn, s, c.channel);
          return;
        case "client_event":
          channels.clientEvent(conn, s, c);
          return;
        case "signin":
          users.signin(conn, s, c.auth, c.userData).catch(failed(conn, "signin"));
          return;
        case "enable_delta":
          enableDelta(ctx, conn, s, c.algorithms);
          return;
        case "delta_sync_error":
          s.deltas?.drop(c.channel);
          return;
      }
    },
    reject(conn, problem: FrameProblem) {
      if (problem === "oversized") return refuse(conn, PusherClose.tooLarge);
      if (problem === "too_large")
        return channels.error(conn, PusherErrorCode.rejected, "Client sent message too large");
      if (problem === "rate_limited")
        return channels.error(conn, PusherErrorCode.rejected, "Client sent too many messages");
      channels.error(conn, null, "frame is not valid UTF-8");
    },
    slowConsumer(conn) {
      conn.close(PusherClose.overCapacity, PusherCodeText[PusherClose.overCapacity]!);
    },
    drain(conn) {
      refuse(conn, PusherClose.reconnect, "server restarting");
    },
    deliveryGap(conn) {
      refuse(conn, PusherClose.reconnect, "live delivery interrupted");
    },
    closed(conn) {
      if (!sessions.delete(conn) || !conn.app) return;
      ctx.presence.connectionClosed(conn.app.id, conn.id).catch((err: unknown) => {
        conn.log.warn({ err }, "presence close report failed");
      });
    },
    registerHttp(app) {
      registerPusherHttp(app, ctx);
    },
  };
}
