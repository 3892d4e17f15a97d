import type { TemplatedApp } from "uWebSockets.js";
import type { AppConfig } from "../../../../shared/src/config/apps.js";
import type { Config } from "../../../../shared/src/config/load.js";
import type { Engine } from "../../../../shared/src/engine/engine.js";
import type { Logger } from "../../../../shared/src/log.js";
import type { PresenceApi } from "../../../../shared/src/presence/api.js";
import type { WebhookSink } from "../../../../shared/src/webhooks/queue.js";
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

/** What dialects get from the composition root: narrow services, no server object. */
export interface GatewayContext {
  config: Config;
  /** Binds a connection to its app; the session is what commands call. */
  sessions: Sessions;
  engine: Engine;
  /** The one publish path: stores the event and records its latency. */
  publish: Publish;
  hub: Hub;
  users: Users;
  blocks: Blocks;
  presence: PresenceApi;
  metrics: Metrics;
  log: Logger;
  apps: AppDirectory;
  /** Webhook events decided at the connection (Pusher client_event, cache_miss). */
  webhooks: WebhookSink;
}

export interface AppDirectory {
  byKey(key: string): AppConfig | undefined;
  byId(id: string): AppConfig | undefined;
  all(): readonly AppConfig[];
}
