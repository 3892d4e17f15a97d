import { Counter, type Registry } from "prom-client";
import type { WebhookCounters } from "./queue.js";

/** Webhook counters on a registry (the gateway's `/metrics`); labelled by app only. */
export function webhookCounters(registry: Registry): WebhookCounters {
  const make = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ["app"] as const, registers: [registry] });
  const dropped = make(
    "tidings_webhook_events_dropped_total",
    "Webhook events dropped because the app's webhook queue was full",
  );
  const delivered = make(
    "tidings_webhook_events_delivered_total",
    "Webhook events handed on (POSTed with a 2xx, or stored in the cluster queue)",
  );
  const failed = make(
    "tidings_webhook_delivery_failures_total",
    "Failed webhook batch deliveries (each is retried)",
  );
  return {
    dropped: (app, n) => dropped.inc({ app }, n),
    delivered: (app, n) => delivered.inc({ app }, n),
    failed: (app) => failed.inc({ app }),
  };
}
