/**
 * Composition root of NATS mode (NATS_URL set): the gateway on JetStream
 * with the presence client, the presence service, or both in one process
 * (TIDINGS_ROLE). The process opens one NATS connection here and hands it to
 * every part: engine, presence client and service, webhooks, cluster bus.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { natsBus } from "../../shared/src/cluster/bus.js";
import { startStatsPublisher } from "../../shared/src/cluster/stats.js";
import type { Config } from "../../shared/src/config/load.js";
import { JetStreamEngine } from "../../shared/src/engine/jetstream.js";
import type { Logger } from "../../shared/src/log.js";
import { connectNats } from "../../shared/src/nats/connect.js";
import { clusterWebhooks } from "../../shared/src/webhooks/setup.js";
import { type Gateway, startGateway } from "../gateway/src/gateway.js";
import { NatsPresenceClient } from "../presence/src/client.js";
import { servePresenceProbes } from "../presence/src/probes.js";
import { runPresence } from "../presence/src/run.js";
import { type Running, stopList } from "./running.js";

/** The connection's name in NATS monitoring and in `NATS link` log lines. */
const CONNECTION_NAME: Record<Config["role"], string> = {
  all: "tidings",
  gateway: "tidings-gateway",
  presence: "tidings-presence",
};

/** How long shutdown waits for the connection to flush before it just closes. */
const DRAIN_MS = 5000;

export async function startNats(config: Config, log: Logger): Promise<Running> {
  const stops = stopList();
  const nc = await connectNats(config, log, CONNECTION_NAME[config.role]);
  stops.push(() => release(nc));
  let gateway: Gateway | undefined;
  let probes: number | undefined;
  let metricsPort: number | undefined;
  try {
    const engine = await JetStreamEngine.fromConnection(nc, {
      replicas: config.natsReplicas >= 3 ? 3 : 1,
      live: {
        subscriptions: config.liveSubscriptions,
        checkMs: config.liveCheckMs,
        gapMs: config.liveGapMs,
        checkRate: config.liveCheckRate,
      },
      onError: (err) => log.warn({ err }, "engine background error"),
    });
    stops.push(() => engine.close());
    if (config.role !== "gateway") {
      // Before the gateway, so its partitions are owned before clients subscribe.
      const plog = log.child({ service: "presence" });
      const presence = await runPresence(config, plog, { nc, engine });
      stops.push(presence.stop);
      const stats = startStatsPublisher(natsBus(nc), {
        kind: "presence",
        id: presence.service.replicaId,
        draining: () => false,
        natsConnected: presence.ready,
        extra: async () => ({ partitions: presence.service.owned().length }),
      });
      stops.push(() => stats.close());
      if (config.role === "presence") {
        const health = await servePresenceProbes(config, presence, log);
        stops.push(() => health.close());
        probes = health.port;
        metricsPort = health.metricsPort;
      }
      log.info({ replica: presence.service.replicaId }, "presence service running");
    }
    if (config.role !== "presence") {
      const presence = new NatsPresenceClient({ nc, heartbeatMs: config.heartbeatMs, log });
      stops.push(() => presence.close());
      const webhooks = await clusterWebhooks(nc, config, log.child({ component: "webhooks" }), {
        drain: false,
      });
      stops.push(() => webhooks.close());
      const started = await startGateway({
        config,
        engine,
        presence,
        log,
        webhooks,
        cluster: { bus: natsBus(nc), gatewayId: presence.gatewayId },
      });
      stops.push(() => started.stop());
      gateway = started;
    }
  } catch (err) {
    return stops.abort(err);
  }
  return {
    gateway,
    ports: { gateway: gateway?.port, probes, metrics: gateway?.metricsPort ?? metricsPort },
    stop: stops.stop,
    [Symbol.asyncDispose]: stops.stop,
  };
}

/** Flushes what is still queued (reports, acks); a link that is down is just closed. */
async function release(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((r) => {
    timer = setTimeout(r, DRAIN_MS);
  });
  await Promise.race([nc.drain().catch(() => {}), late]);
  clearTimeout(timer);
  if (!nc.isClosed()) await nc.close();
}
