import type { TemplatedApp } from "uWebSockets.js";
import type { AppConfig } from "../../../../shared/src/config/apps.js";
import type { Config } from "../../../../shared/src/config/load.js";
import type { Engine } from "../../../../shared/src/engine/engine.js";
import type { Logger } from "../../../../shared/src/log.js";
import type { PresenceApi } from "../../../../shared/src/presence/api.js";
import type { WebhookSink } from "../../../../shared/src/webhooks/queue.js";
import type { ServerApi } from "../api/server-api.js";
import type { Metrics } from "../metrics.js";
import type { Blocks } from "./blocks.js";
import type { Connection } from "./connection.js";
import type { Hub } from "./hub.js";
import type { Publish } from "./publish.js";
import type { Sessions } from "./session.js";
import type { Users } from "./users.js";

/**
 * Frames the server rejects before the dialect sees them. `oversized` is a
 * frame so far over the limit (see server.ts) that the dialect closes with
 * 1009 instead of answering; the others are answered and the connection stays.
 */
export type FrameProblem = "too_large" | "oversized" | "rate_limited" | "invalid_utf8";

/**
 * A dialect adapter: the glue between sockets and its pure codec. The
 * server picks one by route at upgrade and calls it for every socket event.
 */
export interface Dialect {
  readonly name: string;
  /** uWS route pattern, e.g. "/ws" or "/app/:key". */
  readonly route: string;
  /** The app key the URL names, checked at upgrade (unknown app, Origin). */
  appKeyOf?(param: string, query: URLSearchParams): string | undefined;
  open(conn: Connection): void;
  message(conn: Connection, text: string): void;
  /** Answers a rejected frame in the dialect's own terms. */
  reject(conn: Connection, problem: FrameProblem): void;
  /** Closes a connection that cannot keep up, with the dialect's over-capacity code. */
  slowConsumer(conn: Connection): void;
  /** Asks the client to reconnect elsewhere (gateway draining). */
  drain(conn: Connection): void;
  /**
   * Closes a connection that missed live events the gateway could not fill
   * in time, with the dialect's reconnect code: the client replays from its
   * last position (the events are in history).
   */
  deliveryGap(conn: Connection): void;
  closed(conn: Connection, code: number): void;
  /** HTTP endpoints of the dialect, registered on the same app and port. */
  registerHttp?(app: TemplatedApp): void;
}

/**
 * What a dialect gets: sessions (the core's connection life: presence, hub,
 * engine behind them), the server API for its HTTP routes, and a few narrow
 * services. No engine, hub or presence of its own, so a dialect cannot go
 * around the core.
 */
export interface DialectContext {
  /** Binds a connection to its app; the session is what commands call. */
  sessions: Sessions;
  /** The product's server API, for a dialect's HTTP routes. */
  api: ServerApi;
  blocks: Blocks;
  metrics: Metrics;
  log: Logger;
  apps: AppDirectory;
  /** Webhook events decided at the connection (Pusher client_event, cache_miss). */
  webhooks: WebhookSink;
}

/** The settings the dialects read, and only those. */
export interface DialectSettings {
  /** Seconds of silence before a keep-alive ping (Pusher's activity_timeout, Foony's heartbeat). */
  activityTimeoutSec: number;
  /** Seconds to wait for the pong before the connection counts as dead. */
  pongTimeoutSec: number;
}

/** Everything the composition root wires: what the server and the console use too. */
export interface GatewayContext extends DialectContext {
  config: Config;
  engine: Engine;
  /** The one publish path: stores the event and records its latency. */
  publish: Publish;
  hub: Hub;
  users: Users;
  presence: PresenceApi;
}

export interface AppDirectory {
  byKey(key: string): AppConfig | undefined;
  byId(id: string): AppConfig | undefined;
  all(): readonly AppConfig[];
}
