import type { TemplatedApp, WebSocket } from "uWebSockets.js";
import type { AppConfig } from "../../../shared/src/config/apps.js";
import { registerProbes } from "../../../shared/src/http/health.js";
import { listenExclusive } from "../../../shared/src/http/listen.js";
import uWS from "../../../shared/src/http/uws.js";
import { jsonTooDeep } from "../../../shared/src/json-depth.js";
import { AppQuota, Connection, type SocketData, type UpgradeInfo } from "./core/connection.js";
import type { Dialect, GatewayContext } from "./core/dialect.js";
import type { HubOutlet } from "./core/hub.js";
import { checkSilence, SILENCE_SWEEP_MS } from "./core/keepalive.js";
import type { Metrics } from "./metrics.js";

if (typeof (uWS as unknown as { getParts?: unknown }).getParts !== "function") {
  // Without a native binary for this Node, uWS falls back to a slow JS shim.
  throw new Error(
    'uWebSockets.js native binary not loaded: run on Node 20 or 24 (see README "Requirements")',
  );
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Frames up to this many times the app's limit are answered in the
 * dialect's own terms and the connection stays; larger ones close it with
 * 1009 (the dialect's "oversized").
 */
const ANSWERED_FRAME_FACTOR = 4;
/**
 * uWS reads frames up to this many times the largest app limit, so the
 * gateway sees them and closes with a close frame. Past it uWS drops the TCP
 * connection without one (clients see 1006): it has no hook there. The
 * bound is also what one connection may make uWS buffer for a frame in
 * flight (1 MiB at the default limit, below the send-side backstop of
 * `maxBackpressure`).
 */
const READ_FRAME_FACTOR = 16;

export interface GatewayServer {
  app: TemplatedApp;
  port: number;
  connections: Set<Connection>;
  /** The `/readyz` checks: the engine reachable and this gateway not draining. */
  readiness(): Record<string, boolean>;
  /** Stops accepting, asks clients to reconnect over `seconds`, resolves when all are gone. */
  drain(seconds: number): Promise<void>;
  /** Closes a connection over its send-buffer limit with its dialect's code; counted once. */
  closeSlowConsumer(conn: Connection): void;
  /** Closes a connection that missed live events with its dialect's reconnect code; counted once. */
  closeForReplay(conn: Connection): void;
  close(): void;
}

/**
 * A server that exists but routes and listens to nothing yet: the hub is
 * built on it (publish to a topic, close a connection in its dialect's
 * terms) before the dialects that need the hub, and `listen` mounts them.
 */
export interface UnstartedServer extends HubOutlet {
  app: TemplatedApp;
  /** Mounts the dialects' routes and the HTTP ones, then listens; call once. */
  listen(
    ctx: GatewayContext,
    dialects: Dialect[],
    port: number,
    host: string,
    /**
     * More HTTP routes on the same port (`/metrics` and the console when
     * they have no port of their own), registered before the 404 catch-all.
     */
    registerHttp?: (app: TemplatedApp) => void,
  ): Promise<GatewayServer>;
}

/**
 * The uWS glue every dialect shares: upgrade, limits (frame size, rate,
 * connections, Origin, slow consumers), metrics, and routing to the
 * dialect adapter chosen by path.
 */
export function createServer(metrics: Metrics): UnstartedServer {
  const app = uWS.App();
  const connections = new Set<Connection>();
  /** Dialects by name (filled by `listen`): a connection's speaks for it when the gateway closes it. */
  const dialects = new Map<string, Dialect>();
  const slowClosed = new WeakSet<Connection>();
  const closeSlowConsumer = (conn: Connection) => {
    if (conn.closed || slowClosed.has(conn)) return;
    slowClosed.add(conn);
    metrics.slowConsumerCloses.inc({ dialect: conn.dialect });
    conn.log.warn({ buffered: conn.bufferedAmount() }, "slow consumer closed");
    dialects.get(conn.dialect)?.slowConsumer(conn);
  };
  const closeForReplay = (conn: Connection) => {
    if (conn.closed || conn.ending) return;
    metrics.liveGapCloses.inc({ dialect: conn.dialect });
    dialects.get(conn.dialect)?.deliveryGap(conn);
  };
  return {
    app,
    publish: (topic, bytes) => app.publish(topic, bytes, false),
    closeSlowConsumer,
    closeForReplay,
    listen: (ctx, mounted, port, host, registerHttp) =>
      listen(
        { app, connections, dialects, closeSlowConsumer, closeForReplay },
        ctx,
        mounted,
        port,
        host,
        registerHttp,
      ),
  };
}

async function listen(
  server: {
    app: TemplatedApp;
    connections: Set<Connection>;
    dialects: Map<string, Dialect>;
    closeSlowConsumer: (conn: Connection) => void;
    closeForReplay: (conn: Connection) => void;
  },
  ctx: GatewayContext,
  dialects: Dialect[],
  port: number,
  host: string,
  registerHttp?: (app: TemplatedApp) => void,
): Promise<GatewayServer> {
  const { app, connections, closeSlowConsumer, closeForReplay } = server;
  for (const d of dialects) server.dialects.set(d.name, d);
  const quota = new AppQuota();
  let draining = false;
  const apps = ctx.apps.all();
  const maxFrame = Math.max(...apps.map((a) => a.limits.maxFrameBytes));
  const maxBuffer = Math.max(...apps.map((a) => a.limits.slowConsumerBytes));
  const countApp = (conn: Connection, a: AppConfig, delta: 1 | -1) =>
    ctx.metrics.connections.inc({ app: a.id, dialect: conn.dialect }, delta);

  for (const dialect of dialects) {
    app.ws<SocketData>(dialect.route, {
      compression: uWS.DISABLED,
      // uWS takes it as a signed 32-bit number.
      maxPayloadLength: Math.min(maxFrame * READ_FRAME_FACTOR, 2 ** 31 - 1),
      // The hub and the sweep below close slow consumers with the dialect's code
      // at the app's limit; this hard stop (a close, never a silent drop) is the backstop.
      maxBackpressure: maxBuffer * 2 + 1024 * 1024,
      closeOnBackpressureLimit: 1, // a boolean typed as number in this uWS release
      idleTimeout: 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        if (draining) {
          res.writeStatus("503 Service Unavailable").end("draining");
          return;
        }
        const query = new URLSearchParams(req.getQuery() ?? "");
        const param = req.getParameter(0) ?? "";
        const key = dialect.appKeyOf?.(param, query);
        const appConfig = key === undefined ? undefined : ctx.apps.byKey(key);
        const origin = req.getHeader("origin");
        if (
          appConfig &&
          appConfig.allowedOrigins.length > 0 &&
          !appConfig.allowedOrigins.includes(origin)
        ) {
          res.writeStatus("403 Forbidden").end("origin not allowed");
          return;
        }
        const upgrade: UpgradeInfo = {
          query,
          param,
          origin,
          remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
          app: appConfig,
        };
        res.upgrade<SocketData>(
          { upgrade },
          req.getHeader("sec-websocket-key"),
          req.getHeader("sec-websocket-protocol"),
          req.getHeader("sec-websocket-extensions"),
          context,
        );
      },
      open: (ws: WebSocket<SocketData>) => {
        const data = ws.getUserData();
        const conn = new Connection(ws, dialect.name, data.upgrade, ctx.log, quota, countApp);
        data.conn = conn;
        connections.add(conn);
        dialect.open(conn);
        // After open: a dialect that knows the app from the URL has bound it by now.
        const appId = conn.app?.id ?? data.upgrade.app?.id ?? "";
        ctx.metrics.connectionsOpened.inc({ app: appId, dialect: dialect.name });
        // Read at open only (sign-in parameters); not kept for the connection's life.
        data.upgrade.query = undefined;
      },
      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn;
        if (!conn || conn.closed) return;
        ctx.metrics.messagesIn.inc({ app: conn.app?.id ?? "", dialect: dialect.name });
        const limit = conn.app?.limits.maxFrameBytes ?? maxFrame;
        if (message.byteLength > limit * ANSWERED_FRAME_FACTOR)
          return dialect.reject(conn, "oversized");
        if (!conn.allowMessage()) return dialect.reject(conn, "rate_limited");
        if (message.byteLength > limit) return dialect.reject(conn, "too_large");
        let text: string;
        try {
          // Text frames are validated by uWS (a broken one fails the connection inside
          // uWS, with no close frame, before this handler); binary ones may hold anything.
          text = isBinary ? utf8.decode(message) : Buffer.from(message).toString("utf8");
        } catch {
          return dialect.reject(conn, "invalid_utf8");
        }
        // Deep nesting is a size too: past it values cannot be re-encoded for delivery.
        if (jsonTooDeep(text)) return dialect.reject(conn, "too_large");
        try {
          dialect.message(conn, text);
        } catch (err) {
          conn.log.error({ err }, "dialect failed on a frame");
        }
      },
      drain: (ws) => ws.getUserData().conn?.drained(),
      close: (ws, code) => {
        const conn = ws.getUserData().conn;
        if (!conn) return;
        connections.delete(conn);
        conn.markClosed();
        ctx.metrics.connectionClosed(conn.app?.id ?? "", dialect.name, code);
        try {
          dialect.closed(conn, code);
        } catch (err) {
          conn.log.error({ err }, "dialect close handler failed");
        }
        // After the dialect's own cleanup, which may still signal on its channels.
        if (conn.session) conn.session.closed();
        else ctx.hub.leaveAll(conn);
      },
    });
  }

  const readiness = () => ({ engine: ctx.engine.isReady(), accepting: !draining });
  registerProbes(app, { readiness });
  for (const d of dialects) d.registerHttp?.(app);
  registerHttp?.(app);
  app.any("/*", (res) => {
    res.writeStatus("404 Not Found").end("not found");
  });

  const listenSocket = await listenExclusive(app, host, port);
  const boundPort = uWS.us_socket_local_port(listenSocket);
  let listening = true;
  // Closing a listen socket twice crashes uWS (SIGSEGV), so only ever once.
  const stopListening = () => {
    if (!listening) return;
    listening = false;
    uWS.us_listen_socket_close(listenSocket);
  };

  // One pass a second over every connection, not a timer per socket (each
  // wake-up of an idle gateway costs): the keep-alives of every dialect
  // (pings, silence closes), and the send queues, which the hub checks as a
  // channel's deliveries add up but nothing checks after direct sends
  // (replies, replays) or once a channel goes quiet.
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const conn of connections) {
      checkSilence(conn, now);
      // One the silence check just ended is not also a slow consumer.
      if (conn.ending) continue;
      if (conn.bufferedAmount() > (conn.app?.limits.slowConsumerBytes ?? maxBuffer))
        closeSlowConsumer(conn);
    }
  }, SILENCE_SWEEP_MS);
  sweep.unref();

  return {
    app,
    port: boundPort,
    connections,
    readiness,
    closeSlowConsumer,
    closeForReplay,
    async drain(seconds: number) {
      draining = true;
      ctx.metrics.draining.set(1);
      stopListening();
      const all = [...connections];
      // Spread reconnects so the remaining gateways are not hit all at once.
      const step = all.length > 0 ? (seconds * 1000) / all.length : 0;
      for (const conn of all) {
        if (!conn.closed) server.dialects.get(conn.dialect)?.drain(conn);
        if (step > 0) await new Promise((r) => setTimeout(r, step));
      }
      // Closing handshakes take a round trip; give them a moment before a hard close.
      const deadline = Date.now() + 5000;
      while (connections.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close() {
      clearInterval(sweep);
      stopListening();
      for (const conn of [...connections]) if (!conn.ending) conn.ws.close();
    },
  };
}
