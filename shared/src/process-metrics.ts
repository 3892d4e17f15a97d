import { collectDefaultMetrics, Gauge, Registry } from "prom-client";

/**
 * The registry every Tidings process starts from, a gateway or a presence
 * replica running alone: Node's own metrics under their standard names
 * (process_*, nodejs_*, which the community Node.js dashboards query), the
 * build info, and whether the process's NATS connection is up — read at
 * scrape time, never kept up to date on a hot path.
 */
export function processRegistry(opts: {
  version: string;
  /** What "connected" means for this process, for the gauge's help text. */
  natsHelp: string;
  natsConnected: () => boolean;
}): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: "tidings_build_info",
    help: "Always 1; the running version and Node in its labels",
    labelNames: ["version", "node"] as const,
    registers: [registry],
  }).set({ version: opts.version, node: process.versions.node }, 1);
  new Gauge({
    name: "tidings_nats_connected",
    help: opts.natsHelp,
    registers: [registry],
    collect() {
      this.set(opts.natsConnected() ? 1 : 0);
    },
  });
  return registry;
}
