import type { TemplatedApp } from "uWebSockets.js";
import type { ClusterBus } from "../../../shared/src/cluster/bus.js";
import type { Config } from "../../../shared/src/config/load.js";
import type { Engine } from "../../../shared/src/engine/engine.js";
import { registerMetrics, startHealthServer } from "../../../shared/src/http/health.js";
import type { Logger } from "../../../shared/src/log.js";
import type { PresenceApi } from "../../../shared/src/presence/api.js";
import { tidingsVersion } from "../../../shared/src/version.js";
import { webhookCounters } from "../../../shared/src/webhooks/metrics.js";
import { noWebhooks } from "../../../shared/src/webhooks/queue.js";
import type { Webhooks } from "../../../shared/src/webhooks/setup.js";
import { ServerApi } from "./api/server-api.js";
import { consoleFor } from "./console/index.js";
import { Blocks } from "./core/blocks.js";
import type { AppDirectory, Dialect, GatewayContext } from "./core/dialect.js";
import { Hub } from "./core/hub.js";
import { createPublish } from "./core/publish.js";
import { Sessions } from "./core/session.js";
import { Users } from "./core/users.js";
import { registerDemo } from "./demo/routes.js";
import { createDialects } from "./dialects/index.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createServer, type GatewayServer } from "./server.js";

export interface Gateway {
  port: number;
  /** Where `/metrics` and the console are: TIDINGS_METRICS_PORT's listener, or `port`. */
  metricsPort: number;
  server: GatewayServer;
  metrics: Metrics;
  /** Graceful: drain clients over the configured window, then stop. */
  stop(): Promise<void>;
}

/** Composes the gateway from narrow parts; the only place that knows them all. */
export async function startGateway(deps: {
  config: Config;
  engine: Engine;
  presence: PresenceApi;
  log: Logger;
  /** This process's webhooks: where events go, and the queue its metrics read. */
  webhooks?: Pick<Webhooks, "sink" | "queue"> | undefined;
  /** Where stats go and console questions come from; absent: this process alone. */
  cluster?: { bus: ClusterBus; gatewayId: string } | undefined;
}): Promise<Gateway> {
  const { config, engine, presence, log } = deps;
  const metrics = createMetrics(tidingsVersion());
  const apps = directory(config);
  for (const app of config.apps) {
    await engine.ensureApp(app.id, {
      historyPerChannel: app.limits.historyPerChannel,
      historyMaxAgeSec: app.limits.historyMaxAgeSec,
      dedupeWindowSec: app.limits.dedupeWindowSec,
      streamPartitions: app.streamPartitions,
    });
  }
  // The server first, routing nothing yet: the hub sends through it, the
  // dialects need the hub, and `listen` mounts the dialects.
  const server = createServer(metrics);
  const hub = new Hub(engine, server, metrics, log);
  const publish = createPublish(engine, metrics);
  const users = new Users(engine);
  const blocks = new Blocks(engine);
  const ctx: GatewayContext = {
    config,
    sessions: new Sessions({ engine, publish, hub, users, presence, log }),
    api: new ServerApi({ engine, publish, presence, blocks }),
    engine,
    publish,
    hub,
    users,
    blocks,
    presence,
    metrics,
    log,
    apps,
    webhooks: deps.webhooks?.sink ?? noWebhooks,
  };
  const dialects: Dialect[] = createDialects(ctx, config);
  const operator = consoleFor(ctx, deps.cluster);
  const internal = config.metricsPort !== undefined;
  // Without a port of their own, /metrics and the console sit beside the dialects.
  const shared = (app: TemplatedApp) => {
    registerMetrics(app, { registry: metrics.registry, log });
    operator.register?.(app);
  };
  const running = await server.listen(
    ctx,
    dialects,
    config.port,
    config.host,
    internal ? undefined : shared,
  );
  let ops: { port: number; close(): void } | undefined;
  if (config.metricsPort !== undefined) {
    try {
      ops = await startHealthServer(
        config.host,
        config.metricsPort,
        { readiness: running.readiness, registry: metrics.registry, log },
        operator.register,
      );
    } catch (err) {
      running.close();
      throw err;
    }
    log.info({ port: ops.port }, "metrics and console listening");
  }
  const queue = deps.webhooks?.queue;
  queue?.useCounters(webhookCounters(metrics.registry));
  metrics.bind({
    connections: () => running.connections,
    natsConnected: () => engine.isReady(),
    presenceLagSeconds: () => presence.reportLagSeconds?.() ?? 0,
    publishRetries: () => engine.publishRetries?.() ?? 0,
    positionReads: () => engine.positionReads?.(),
    webhookDepth: (id) => queue?.size(id) ?? 0,
    appIds: () => config.apps.map((a) => a.id),
  });
  operator.start(running);
  registerDemo(running.app, config);
  return {
    port: running.port,
    metricsPort: ops?.port ?? running.port,
    server: running,
    metrics,
    async stop() {
      operator.draining();
      await running.drain(config.drainSeconds);
      operator.close();
      running.close();
      ops?.close();
    },
  };
}

function directory(config: Config): AppDirectory {
  const byKey = new Map(config.apps.map((a) => [a.key, a]));
  const byId = new Map(config.apps.map((a) => [a.id, a]));
  return { byKey: (k) => byKey.get(k), byId: (id) => byId.get(id), all: () => config.apps };
}
