/**
 * The one configuration schema: every setting's env var, default, type and
 * description. `load.ts` validates against it; the README's table is
 * generated from it (`npm run config:docs`) and a test keeps the two equal.
 */

export type FieldType = "int" | "string" | "enum" | "json" | "bool" | "list";

export interface Field {
  env: string;
  type: FieldType;
  default: string | number | boolean | undefined;
  description: string;
  values?: readonly string[];
  min?: number;
  max?: number;
  /** Per-app override key inside an app's `limits` object. */
  appLimit?: string;
  secret?: boolean;
}

/**
 * Node fires a timer given more than 2^31-1 ms at once (with a warning), so
 * every duration a timer waits on stays under it.
 */
const TIMER_MAX_MS = 2_147_483_647;
const TIMER_MAX_SEC = Math.floor(TIMER_MAX_MS / 1000);

export const schema = {
  port: {
    env: "PORT",
    type: "int",
    default: 6001,
    min: 0,
    max: 65535,
    description: "TCP port for WebSockets and HTTP (0 = any free port).",
  },
  metricsPort: {
    env: "TIDINGS_METRICS_PORT",
    type: "int",
    default: undefined,
    min: 0,
    max: 65535,
    description:
      "Internal port for `/metrics` and the operator console (`/healthz` and `/readyz` answer there too). Unset: they share PORT, so `npm start` needs one port; the image and the chart set 9090 to keep them off the public port. 0 = any free port.",
  },
  host: { env: "HOST", type: "string", default: "0.0.0.0", description: "Interface to listen on." },
  apps: {
    env: "TIDINGS_APPS",
    type: "json",
    default: undefined,
    secret: true,
    description:
      "JSON array of apps `{id, key, secret, apiKeys?, jwks?, allowedOrigins?, webhooks?, limits?, streamPartitions?}`. Unset: the development app `app-id`/`app-key`/`app-secret` (with a warning).",
  },
  configFile: {
    env: "TIDINGS_CONFIG_FILE",
    type: "string",
    default: undefined,
    description:
      "Optional JSON file with any of these settings, keyed by env var name; env vars win.",
  },
  natsUrl: {
    env: "NATS_URL",
    type: "list",
    default: undefined,
    description:
      "Comma-separated NATS servers. Unset: the embedded in-memory engine (single process).",
  },
  natsUser: {
    env: "NATS_USER",
    type: "string",
    default: undefined,
    description: "NATS user name.",
  },
  natsPass: {
    env: "NATS_PASS",
    type: "string",
    default: undefined,
    secret: true,
    description: "NATS password.",
  },
  natsToken: {
    env: "NATS_TOKEN",
    type: "string",
    default: undefined,
    secret: true,
    description: "NATS auth token.",
  },
  natsCredsFile: {
    env: "NATS_CREDS_FILE",
    type: "string",
    default: undefined,
    description: "NATS credentials (.creds) file.",
  },
  natsTlsCa: {
    env: "NATS_TLS_CA",
    type: "string",
    default: undefined,
    description: "CA file for TLS to NATS (enables TLS).",
  },
  natsReplicas: {
    env: "NATS_REPLICAS",
    type: "int",
    default: 1,
    min: 1,
    max: 5,
    description:
      "Replicas of each app stream and KV bucket (use 3 in production; JetStream allows at most 5).",
  },
  role: {
    env: "TIDINGS_ROLE",
    type: "enum",
    values: ["all", "gateway", "presence"],
    default: "all",
    description: "What this process runs: gateway and presence (`all`), or one of them.",
  },
  logLevel: {
    env: "LOG_LEVEL",
    type: "enum",
    values: ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
    default: "info",
    description: "pino log level.",
  },
  drainSeconds: {
    env: "TIDINGS_DRAIN_SECONDS",
    type: "int",
    default: 10,
    min: 0,
    max: TIMER_MAX_SEC,
    description: "On SIGTERM, spread client reconnects over this many seconds before exiting.",
  },
  maxFrameBytes: {
    env: "TIDINGS_MAX_FRAME_BYTES",
    type: "int",
    default: 65536,
    min: 256,
    appLimit: "maxFrameBytes",
    description:
      "Largest client frame accepted; larger frames get the dialect's too-large error, and frames over 4x it close the connection with 1009.",
  },
  maxMessageRate: {
    env: "TIDINGS_MAX_MESSAGE_RATE",
    type: "int",
    default: 100,
    min: 1,
    appLimit: "maxMessageRate",
    description: "Client frames per second per connection (burst = 2 s worth).",
  },
  maxSubscriptions: {
    env: "TIDINGS_MAX_SUBSCRIPTIONS",
    type: "int",
    default: 100,
    min: 1,
    appLimit: "maxSubscriptions",
    description: "Channels one connection may subscribe to.",
  },
  maxConnections: {
    env: "TIDINGS_MAX_CONNECTIONS",
    type: "int",
    default: 100000,
    min: 1,
    appLimit: "maxConnections",
    description: "Connections per app on one gateway.",
  },
  slowConsumerBytes: {
    env: "TIDINGS_SLOW_CONSUMER_BYTES",
    type: "int",
    default: 1048576,
    min: 1024,
    appLimit: "slowConsumerBytes",
    description: "Unsent bytes a connection may queue before it is closed as a slow consumer.",
  },
  historyPerChannel: {
    env: "TIDINGS_HISTORY_PER_CHANNEL",
    type: "int",
    default: 1000,
    min: 1,
    appLimit: "historyPerChannel",
    description: "Events kept per channel for history and replay.",
  },
  historyMaxAgeSec: {
    env: "TIDINGS_HISTORY_MAX_AGE",
    type: "int",
    default: 86400,
    min: 0,
    appLimit: "historyMaxAgeSec",
    description: "Seconds an event stays in history (0 = until trimmed by count).",
  },
  dedupeWindowSec: {
    env: "TIDINGS_DEDUPE_WINDOW",
    type: "int",
    default: 120,
    min: 1,
    appLimit: "dedupeWindowSec",
    description:
      "Seconds an idempotency key is remembered (with NATS at least 15, the publisher's retry deadline, unless history is kept less long).",
  },
  maxPresenceMembers: {
    env: "TIDINGS_MAX_PRESENCE_MEMBERS",
    type: "int",
    default: 100,
    min: 1,
    appLimit: "maxPresenceMembers",
    description: "Members per presence channel.",
  },
  clientEventRate: {
    env: "TIDINGS_CLIENT_EVENT_RATE",
    type: "int",
    default: 10,
    min: 1,
    appLimit: "clientEventRate",
    description:
      "Ephemeral client events (Pusher client-*, Herald event.trigger) per second per connection.",
  },
  webhookQueueLimit: {
    env: "TIDINGS_WEBHOOK_QUEUE_LIMIT",
    type: "int",
    default: 10000,
    min: 1,
    appLimit: "webhookQueueLimit",
    description:
      "Pusher webhook events an app may have waiting for delivery; past it the oldest are dropped (counted and logged).",
  },
  activityTimeoutSec: {
    env: "TIDINGS_ACTIVITY_TIMEOUT",
    type: "int",
    default: 120,
    min: 5,
    max: TIMER_MAX_SEC,
    description:
      "Seconds of client silence before a keep-alive check (Pusher activity_timeout, Foony keepAliveMs).",
  },
  pongTimeoutSec: {
    env: "TIDINGS_PONG_TIMEOUT",
    type: "int",
    default: 30,
    min: 1,
    max: TIMER_MAX_SEC,
    description:
      "Seconds a client has to answer a keep-alive ping before it is closed (Pusher 4201).",
  },
  heartbeatMs: {
    env: "TIDINGS_HEARTBEAT_MS",
    type: "int",
    default: 2000,
    min: 100,
    max: TIMER_MAX_MS,
    description: "Gateway → presence heartbeat interval.",
  },
  gatewayTimeoutMs: {
    env: "TIDINGS_GATEWAY_TIMEOUT_MS",
    type: "int",
    default: 10000,
    min: 500,
    max: TIMER_MAX_MS,
    description: "A gateway silent this long is considered dead and its members removed.",
  },
  natsConnectTimeoutMs: {
    env: "TIDINGS_NATS_CONNECT_TIMEOUT_MS",
    type: "int",
    default: 60_000,
    min: 0,
    max: TIMER_MAX_MS,
    description:
      "NATS: how long start-up retries an unreachable NATS (with backoff, each attempt logged) before the process exits with a one-line error. Once connected, the link is retried forever.",
  },
  liveSubscriptions: {
    env: "TIDINGS_LIVE_SUBSCRIPTIONS",
    type: "enum",
    values: ["app", "channel"],
    default: "app",
    description:
      "NATS: how a gateway receives live events and signals: one subscription per app (`app`: no subscription per channel on nats-server or the gateway; the gateway also receives, and drops, the app's messages for channels it does not hold) or one per channel it holds (`channel`: for many gateways that each hold a small share of an app's busy channels, where `app` would send every gateway every event).",
  },
  liveCheckMs: {
    env: "TIDINGS_LIVE_CHECK_MS",
    type: "int",
    default: 5000,
    min: 100,
    max: TIMER_MAX_MS,
    description:
      "NATS: how often a gateway reads each stream's last seq (one read per stream with subscribed channels), so a lost live event is found without a later one; channels of a stream that moved past what they delivered then read their own, at most `TIDINGS_LIVE_CHECK_RATE` a second. A lost last event is found within about this + (such channels) / rate (stream reads and channel reads take turns, so with S streams at most max(this, 2·S / rate) + 2·(such channels) / rate).",
  },
  liveCheckRate: {
    env: "TIDINGS_LIVE_CHECK_RATE",
    type: "int",
    default: 100,
    min: 1,
    max: 1_000_000,
    description:
      "NATS: position reads (per stream and per channel, see `TIDINGS_LIVE_CHECK_MS`) one gateway starts per second at most, so the check's load on the stream leaders stays bounded however many channels there are.",
  },
  liveGapMs: {
    env: "TIDINGS_LIVE_GAP_MS",
    type: "int",
    default: 10000,
    min: 100,
    max: TIMER_MAX_MS,
    description:
      "NATS: how long a live event may wait for a missing earlier one to be read from the stream; past it the channel's subscribers are closed with their dialect's reconnect code and replay.",
  },
  consoleSecret: {
    env: "TIDINGS_CONSOLE_SECRET",
    type: "string",
    default: undefined,
    secret: true,
    description:
      "Enables the operator console at `/console`: the secret that logs in to the whole cluster (at least 16 characters). An app's own secret then logs in scoped to that app. Unset: no console.",
  },
  consoleSessionSec: {
    env: "TIDINGS_CONSOLE_SESSION_SECONDS",
    type: "int",
    default: 3600,
    min: 60,
    max: 604800,
    description: "Seconds a console login lasts before the operator must log in again.",
  },
} as const satisfies Record<string, Field>;

export type Schema = typeof schema;
export type ConfigKey = keyof Schema;

/** The value a field parses to: its type, or undefined when it has no default. */
type ValueOf<F> = (
  F extends { type: "int" }
    ? number
    : F extends { type: "bool" }
      ? boolean
      : F extends { type: "enum"; values: readonly (infer V)[] }
        ? V
        : F extends { type: "list" }
          ? readonly string[]
          : F extends { type: "json" }
            ? unknown
            : string
) extends infer T
  ? F extends { default: undefined }
    ? T | undefined
    : T
  : never;

/** Keys of the fields that are per-app limits (they live in `AppLimits`, not at the top). */
type LimitKey = {
  [K in ConfigKey]: Schema[K] extends { appLimit: string } ? K : never;
}[ConfigKey];

/** Every limit an app may override, derived from the fields that name an `appLimit`. */
export type AppLimits = {
  [K in LimitKey as Schema[K] extends { appLimit: infer A extends string } ? A : never]: number;
};

/**
 * The process-wide settings, one per field that is neither a per-app limit
 * nor consumed while loading (`apps` becomes `Config.apps`, `configFile`
 * names where the rest comes from).
 */
export type Settings = {
  readonly [K in Exclude<ConfigKey, LimitKey | "apps" | "configFile">]: ValueOf<Schema[K]>;
};
