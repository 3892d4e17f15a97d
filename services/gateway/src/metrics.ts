import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * Gateway metrics. Labels stay low-cardinality: app and dialect only, never
 * channel, user or connection.
 */
export function createMetrics() {
  const registry = new Registry();
  // Node's own names (process_*, nodejs_*), which the community Node.js
  // dashboards query; only Tidings' metrics carry the tidings_ prefix.
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    connections: new Gauge({
      name: "tidings_connections",
      help: "Open WebSocket connections",
      labelNames: ["app", "dialect"] as const,
      registers: [registry],
    }),
    messagesIn: new Counter({
      name: "tidings_messages_in_total",
      help: "Frames received from clients",
      labelNames: ["dialect"] as const,
      registers: [registry],
    }),
    messagesOut: new Counter({
      name: "tidings_messages_out_total",
      help: "Frames sent to clients (fan-out counted per recipient)",
      labelNames: ["dialect"] as const,
      registers: [registry],
    }),
    publishLatency: new Histogram({
      name: "tidings_publish_seconds",
      help: "Time from a client publish request to its durable acknowledgement",
      labelNames: ["dialect"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
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
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
