import { Counter, Gauge, Histogram } from "prom-client";
import type { PositionReads } from "../../../shared/src/engine/engine.js";
import { processRegistry } from "../../../shared/src/process-metrics.js";
import { closeReason } from "./metrics-close.js";

/**
 * What the gateway's gauges read at scrape time, bound by `startGateway`
 * once the parts exist. Read on scrape, not kept up to date on hot paths.
 */
export interface MetricSources {
  /** Open connections, for the subscriptions gauge. */
  connections(): Iterable<{
    app?: { id: string } | undefined;
    dialect: string;
    /** Its subscriptions (a count: `Connection.channels` builds a Set for one channel). */
    channelCount: number;
  }>;
  natsConnected(): boolean;
  presenceLagSeconds(): number;
  publishRetries(): number;
  positionReads(): PositionReads | undefined;
  /** Webhook events waiting in this process's queue for the app. */
  webhookDepth(appId: string): number;
  appIds(): readonly string[];
}

const none: MetricSources = {
  connections: () => [],
  natsConnected: () => true,
  presenceLagSeconds: () => 0,
  publishRetries: () => 0,
  positionReads: () => undefined,
  webhookDepth: () => 0,
  appIds: () => [],
};

/**
 * What a running total (the engine's, read at scrape time) grew by since the
 * last call: what the counter mirroring it adds.
 */
function growth(): (total: number) => number {
  let seen = 0;
  return (total) => {
    const by = total - seen;
    seen = total;
    return by;
  };
}

/**
 * Gateway metrics. Labels stay low-cardinality: app, dialect, a close
 * reason class, an HTTP route template and status, never channel, user or
 * connection.
 */
export function createMetrics(version = "unknown") {
  let sources = none;
  const retries = growth();
  const reads = { stream: growth(), anchor: growth(), check: growth(), start: growth() };
  const registry = processRegistry({
    version,
    natsHelp: "1 while the engine's NATS connection is up (always 1 on the memory engine)",
    natsConnected: () => sources.natsConnected(),
  });
  new Gauge({
    name: "tidings_subscriptions",
    help: "Channel subscriptions held by open connections on this gateway",
    labelNames: ["app", "dialect"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const c of sources.connections())
        if (c.channelCount > 0)
          this.inc({ app: c.app?.id ?? "", dialect: c.dialect }, c.channelCount);
    },
  });
  new Gauge({
    name: "tidings_presence_report_lag_seconds",
    help: "Age of the oldest presence report this gateway sent that its partition owner has not acknowledged",
    registers: [registry],
    collect() {
      this.set(sources.presenceLagSeconds());
    },
  });
  new Counter({
    name: "tidings_publish_retries_total",
    help: "JetStream publishes resent (ack timeout or no stream leader), same message id",
    registers: [registry],
    collect() {
      const by = retries(sources.publishRetries());
      if (by > 0) this.inc(by);
    },
  });
  new Counter({
    name: "tidings_position_reads_total",
    help: "Reads live delivery made of stored positions (JetStream): stream = a stream's last seq for the position checks, anchor = one anchoring an app feed's cursor, check = a channel's own position check, start = a channel's last seq at a subscribe the feed cursor could not serve",
    labelNames: ["kind"] as const,
    registers: [registry],
    collect() {
      const totals = sources.positionReads();
      if (!totals) return;
      for (const kind of ["stream", "anchor", "check", "start"] as const) {
        const by = reads[kind](totals[kind]);
        if (by > 0) this.inc({ kind }, by);
      }
    },
  });
  new Gauge({
    name: "tidings_webhook_queue_depth",
    help: "Webhook events waiting in this process's queue (0 for apps without webhooks)",
    labelNames: ["app"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const id of sources.appIds()) this.set({ app: id }, sources.webhookDepth(id));
    },
  });
  const connectionsClosed = new Counter({
    name: "tidings_connections_closed_total",
    help: "WebSocket connections closed, by close code class (normal, going_away, abnormal, protocol, policy, too_large, server, app, other)",
    labelNames: ["app", "dialect", "reason"] as const,
    registers: [registry],
  });
  return {
    registry,
    /** Binds what the scrape-time gauges read; call once the parts exist. */
    bind(s: MetricSources): void {
      sources = s;
    },
    connections: new Gauge({
      name: "tidings_connections",
      help: "Open WebSocket connections",
      labelNames: ["app", "dialect"] as const,
      registers: [registry],
    }),
    connectionsOpened: new Counter({
      name: "tidings_connections_opened_total",
      help: "WebSocket connections accepted",
      labelNames: ["app", "dialect"] as const,
      registers: [registry],
    }),
    connectionClosed(app: string, dialect: string, code: number): void {
      connectionsClosed.inc({ app, dialect, reason: closeReason(code) });
    },
    messagesIn: new Counter({
      name: "tidings_messages_in_total",
      help: "Frames received from clients",
      labelNames: ["app", "dialect"] as const,
      registers: [registry],
    }),
    messagesOut: new Counter({
      name: "tidings_messages_out_total",
      help: "Frames sent to clients (fan-out counted per recipient)",
      labelNames: ["app", "dialect"] as const,
      registers: [registry],
    }),
    publishLatency: new Histogram({
      name: "tidings_publish_seconds",
      help: "Time from a client publish request to its durable acknowledgement",
      labelNames: ["dialect"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    published: new Counter({
      name: "tidings_events_published_total",
      help: "Events stored (duplicates of a resend included: each acknowledged publish), by app and dialect",
      labelNames: ["app", "dialect"] as const,
      registers: [registry],
    }),
    publishErrors: new Counter({
      name: "tidings_publish_errors_total",
      help: "Publishes that failed: unavailable (NATS down, no ack before the deadline) or rejected",
      labelNames: ["app", "dialect", "reason"] as const,
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: "tidings_http_requests_total",
      help: "HTTP API requests, by dialect, route template and status",
      labelNames: ["dialect", "route", "status"] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: "tidings_errors_total",
      help: "Errors sent to clients, by dialect and protocol error code",
      labelNames: ["dialect", "code"] as const,
      registers: [registry],
    }),
    slowConsumerCloses: new Counter({
      name: "tidings_slow_consumer_closes_total",
      help: "Connections closed because they could not keep up",
      labelNames: ["dialect"] as const,
      registers: [registry],
    }),
    liveGaps: new Counter({
      name: "tidings_live_gaps_total",
      help: "Times a channel's live events could not be delivered in time and its subscribers were closed to replay",
      labelNames: ["app"] as const,
      registers: [registry],
    }),
    liveGapCloses: new Counter({
      name: "tidings_live_gap_closes_total",
      help: "Connections closed to reconnect and replay because live events could not reach them in time",
      labelNames: ["dialect"] as const,
      registers: [registry],
    }),
    channels: new Gauge({
      name: "tidings_local_channels",
      help: "Channels with at least one subscriber on this gateway",
      registers: [registry],
    }),
    draining: new Gauge({
      name: "tidings_draining",
      help: "1 while this gateway drains (stopped accepting, moving its clients away)",
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
