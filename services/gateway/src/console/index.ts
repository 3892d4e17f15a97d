import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import { isValidChannel } from "../../../../shared/src/channels.js";
import { type Closable, type ClusterBus, localBus } from "../../../../shared/src/cluster/bus.js";
import { startStatsPublisher } from "../../../../shared/src/cluster/stats.js";
import { EngineUnavailableError } from "../../../../shared/src/engine/engine.js";
import type { Connection } from "../core/connection.js";
import type { GatewayContext } from "../core/dialect.js";
import { BodyTooLargeError } from "../http/body.js";
import { ConsoleActions, str } from "./actions.js";
import { appsInScope, ConsoleAuth, LoginThrottle, SESSION_COOKIE, type Session } from "./auth.js";
import { ClusterView } from "./cluster-view.js";
import { gatewayFigures } from "./gateway-stats.js";
import {
  ConsoleHttpError,
  cookieValue,
  type RequestInfo,
  readJsonBody,
  requestInfo,
  send,
} from "./http.js";
import { eventView, Inspector } from "./inspector.js";
import { pageAssets } from "./page-assets.js";
import { answerProbe } from "./probe.js";
import { Snapshots } from "./snapshot.js";
import { SseStream } from "./sse.js";

export const CONSOLE_PATH = "/console";
const SNAPSHOT_MS = 1000;

/**
 * What every gateway does for consoles, served by it or not: publish its
 * stats and answer questions about its connections.
 */
export function startClusterReporting(o: {
  bus: ClusterBus;
  gatewayId: string;
  ctx: GatewayContext;
  connections: () => Iterable<Connection>;
  connectionCount: () => number;
  draining: () => boolean;
}): Closable {
  const serving = o.bus.serve((q) => answerProbe(o.gatewayId, o.connections(), q));
  const figures = gatewayFigures(o.ctx.metrics, o.ctx.hub, o.connectionCount);
  const stats = startStatsPublisher(o.bus, {
    kind: "gateway",
    id: o.gatewayId,
    draining: o.draining,
    natsConnected: () => o.ctx.engine.isReady(),
    extra: async () => ({ gateway: await figures() }),
  });
  return {
    close() {
      stats.close();
      serving.close();
    },
  };
}

type Handler = (r: {
  info: RequestInfo;
  session: Session;
  body: Record<string, unknown>;
}) => Promise<unknown>;

/**
 * The operator console at /console: the page, and its API behind a login.
 * Registered only when TIDINGS_CONSOLE_SECRET is set.
 */
export function createConsole(ctx: GatewayContext, bus: ClusterBus, consoleSecret: string) {
  const log = ctx.log.child({ component: "console" });
  const auth = new ConsoleAuth(consoleSecret, ctx.apps, ctx.config.consoleSessionSec * 1000);
  const throttle = new LoginThrottle();
  const view = new ClusterView(bus);
  const snapshots = new Snapshots(ctx, bus, view);
  const inspector = new Inspector(ctx, bus, () => view.liveGateways());
  const actions = new ConsoleActions(ctx, log);
  const streams = new Set<SseStream>();
  const assets = pageAssets();

  const cookieFor = (info: RequestInfo, value: string, maxAge: number) =>
    `${SESSION_COOKIE}=${value}; Path=${CONSOLE_PATH}; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${
      info.forwardedProto === "https" ? "; Secure" : ""
    }`;

  const fail = (res: HttpResponse, state: { aborted: boolean }, err: unknown) => {
    if (err instanceof ConsoleHttpError)
      return send(
        res,
        state,
        err.status,
        "application/json",
        JSON.stringify({ error: err.message }),
      );
    if (err instanceof BodyTooLargeError)
      return send(res, state, 413, "application/json", '{"error":"body too large"}');
    if (err instanceof EngineUnavailableError)
      return send(res, state, 503, "application/json", '{"error":"storage unavailable; retry"}');
    log.error({ err }, "console request failed");
    send(res, state, 500, "application/json", '{"error":"internal error"}');
  };

  const sessionOf = (info: RequestInfo) => auth.open(cookieValue(info.cookie, SESSION_COOKIE));

  /** A JSON endpoint behind the session; POSTs also need the CSRF token and a same-origin Origin. */
  const api = (app: TemplatedApp, method: "get" | "post", path: string, handler: Handler) => {
    app[method](`${CONSOLE_PATH}/api/${path}`, (res, req) => {
      const info = requestInfo(res, req);
      const state = { aborted: false };
      res.onAborted(() => {
        state.aborted = true;
      });
      (async () => {
        const session = sessionOf(info);
        if (!session) throw new ConsoleHttpError(401, "not logged in or session expired");
        let body: Record<string, unknown> = {};
        if (method === "post") {
          checkOrigin(info);
          if (!auth.checkCsrf(session, info.csrf))
            throw new ConsoleHttpError(403, "missing or wrong CSRF token");
          body = (await readJsonBody(res, state)) ?? {};
        }
        return handler({ info, session, body });
      })().then(
        (json) => send(res, state, 200, "application/json", JSON.stringify(json ?? {})),
        (err: unknown) => fail(res, state, err),
      );
    });
  };

  const sessionJson = (s: Session) => ({
    scope: s.scope,
    who: s.who,
    expiresAt: s.exp,
    csrf: auth.csrfOf(s),
    apps: appsInScope(s.scope, ctx.apps),
  });

  const register = (app: TemplatedApp) => {
    for (const [name, asset] of assets) {
      const path = name === "index.html" ? CONSOLE_PATH : `${CONSOLE_PATH}/${name}`;
      app.get(path, (res) => send(res, { aborted: false }, 200, asset.type, asset.body));
      if (name === "index.html")
        app.get(`${CONSOLE_PATH}/`, (res) =>
          send(res, { aborted: false }, 200, asset.type, asset.body),
        );
    }

    app.post(`${CONSOLE_PATH}/api/login`, (res, req) => {
      const info = requestInfo(res, req);
      const state = { aborted: false };
      res.onAborted(() => {
        state.aborted = true;
      });
      (async () => {
        checkOrigin(info);
        if (!throttle.allowed(info.remoteAddress))
          throw new ConsoleHttpError(429, "too many failed logins; wait a minute");
        const b = (await readJsonBody(res, state)) ?? {};
        const secret = typeof b.secret === "string" ? b.secret : "";
        const appId = typeof b.app === "string" && b.app !== "" ? b.app : undefined;
        const session = auth.login(secret, appId, typeof b.who === "string" ? b.who : undefined);
        if (!session) {
          throttle.failed(info.remoteAddress);
          log.warn({ remote: info.remoteAddress, app: appId }, "console login refused");
          throw new ConsoleHttpError(401, "wrong secret");
        }
        log.info(
          { console: { who: session.who, scope: session.scope, remote: info.remoteAddress } },
          "console login",
        );
        return session;
      })().then(
        (session) =>
          send(res, state, 200, "application/json", JSON.stringify(sessionJson(session)), [
            ["set-cookie", cookieFor(info, auth.seal(session), ctx.config.consoleSessionSec)],
          ]),
        (err: unknown) => fail(res, state, err),
      );
    });

    api(app, "get", "session", async ({ session }) => sessionJson(session));
    app.post(`${CONSOLE_PATH}/api/logout`, (res, req) => {
      const info = requestInfo(res, req);
      const session = sessionOf(info);
      if (session && auth.checkCsrf(session, info.csrf)) auth.revoke(session);
      send(res, { aborted: false }, 200, "application/json", "{}", [
        ["set-cookie", cookieFor(info, "", 0)],
      ]);
    });

    api(app, "get", "cluster", ({ session }) => snapshots.get(session.scope));
    app.get(`${CONSOLE_PATH}/api/cluster/stream`, (res, req) => {
      const info = requestInfo(res, req);
      const session = sessionOf(info);
      if (!session) return notLoggedIn(res);
      const stream = new SseStream(res);
      streams.add(stream);
      let busy = false;
      const tick = async () => {
        if (busy || stream.closed) return;
        if (session.exp <= Date.now()) return stream.end();
        busy = true;
        try {
          stream.send("cluster", await snapshots.get(session.scope));
        } catch (err) {
          log.warn({ err }, "console snapshot failed");
        } finally {
          busy = false;
        }
      };
      const timer = setInterval(tick, SNAPSHOT_MS);
      void tick();
      stream.whenClosed(() => {
        clearInterval(timer);
        streams.delete(stream);
      });
    });

    api(app, "get", "channels", ({ session, info }) =>
      inspector.channels(
        session,
        info.query.get("app") || undefined,
        info.query.get("prefix") ?? "",
      ),
    );
    api(app, "get", "channel", ({ session, info }) =>
      inspector.channel(
        session,
        str(info.query.get("app"), "app"),
        str(info.query.get("channel"), "channel"),
        count(info.query.get("limit"), 50),
      ),
    );
    api(app, "get", "history", ({ session, info }) =>
      inspector.history(
        session,
        str(info.query.get("app"), "app"),
        str(info.query.get("channel"), "channel"),
        count(info.query.get("after_seq"), 0, Number.MAX_SAFE_INTEGER),
        count(info.query.get("limit"), 100),
      ),
    );
    api(app, "get", "users", ({ session, info }) =>
      inspector.user(
        session,
        info.query.get("app") || undefined,
        str(info.query.get("user_id"), "user_id"),
      ),
    );
    api(app, "get", "actions", async ({ session }) => ({ actions: actions.list(session) }));
    api(app, "post", "publish", ({ session, info, body }) =>
      actions.publish(session, info.remoteAddress, body),
    );
    api(app, "post", "terminate", ({ session, info, body }) =>
      actions.terminate(session, info.remoteAddress, body),
    );
    api(app, "post", "block", ({ session, info, body }) =>
      actions.block(session, info.remoteAddress, body),
    );

    app.get(`${CONSOLE_PATH}/api/tail`, (res, req) => {
      const info = requestInfo(res, req);
      const session = sessionOf(info);
      const appId = info.query.get("app") ?? "";
      const channel = info.query.get("channel") ?? "";
      if (!session) return notLoggedIn(res);
      if (
        !ctx.apps.byId(appId) ||
        !(session.scope.kind === "cluster" || session.scope.appId === appId)
      )
        return send(
          res,
          { aborted: false },
          403,
          "application/json",
          '{"error":"app outside this session\'s scope"}',
        );
      if (!isValidChannel(channel))
        return send(
          res,
          { aborted: false },
          400,
          "application/json",
          '{"error":"invalid channel name"}',
        );
      const stream = new SseStream(res);
      streams.add(stream);
      let dropped = 0;
      const sub = ctx.engine.subscribe(appId, channel, (d) => {
        // `dropped` first: a literal that starts with a spread gets a hidden
        // class of its own each time (see `storedEvent` in model.ts).
        const payload =
          d.type === "event"
            ? { dropped, type: "event", ...eventView(d.event) }
            : { dropped, type: "signal", kind: d.signal.kind, signal: d.signal };
        if (!stream.send(d.type, payload)) dropped++;
        else dropped = 0;
      });
      sub.ready.then(
        () => stream.send("ready", { appId, channel }),
        () => stream.end(),
      );
      const expiry = setTimeout(() => stream.end(), Math.max(0, session.exp - Date.now()));
      stream.whenClosed(() => {
        clearTimeout(expiry);
        sub.close();
        streams.delete(stream);
      });
    });
  };

  return {
    register,
    close() {
      for (const s of [...streams]) s.end();
      view.close();
    },
  };
}

/** A browser sends Origin on POSTs; one naming another host is a cross-site request. */
function checkOrigin(info: RequestInfo): void {
  if (!info.origin) return;
  let host: string;
  try {
    host = new URL(info.origin).host;
  } catch {
    throw new ConsoleHttpError(403, "bad Origin");
  }
  if (host !== info.host) throw new ConsoleHttpError(403, "cross-origin request refused");
}

function count(v: string | null, fallback: number, max = 1000): number {
  if (v === null || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new ConsoleHttpError(400, `expected an integer 0-${max}`);
  return n;
}

/**
 * The console's part of a gateway, for `startGateway`: cluster reporting
 * always (another gateway's console may ask), the console's routes when
 * TIDINGS_CONSOLE_SECRET is set.
 */
export function consoleFor(
  ctx: GatewayContext,
  cluster: { bus: ClusterBus; gatewayId: string } | undefined,
) {
  const bus = cluster?.bus ?? localBus();
  const gatewayId = cluster?.gatewayId ?? `local-${process.pid}`;
  const secret = ctx.config.consoleSecret;
  const operator = secret ? createConsole(ctx, bus, secret) : undefined;
  let draining = false;
  let reporting: Closable | undefined;
  return {
    register: operator?.register,
    start(server: { connections: Set<Connection> }) {
      reporting = startClusterReporting({
        bus,
        gatewayId,
        ctx,
        connections: () => server.connections,
        connectionCount: () => server.connections.size,
        draining: () => draining,
      });
    },
    draining() {
      draining = true;
    },
    close() {
      reporting?.close();
      operator?.close();
    },
  };
}

/** The answer to a request without a valid console session. */
function notLoggedIn(res: HttpResponse): void {
  send(
    res,
    { aborted: false },
    401,
    "application/json",
    '{"error":"not logged in or session expired"}',
  );
}
