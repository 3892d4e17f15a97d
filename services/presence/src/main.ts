/**
 * `npm run start:presence`: the presence service alone, on NATS. Run as
 * many as you like; they split the partitions between them and take over
 * each other's within a lease TTL (see services/presence/README.md).
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { credsAuthenticator, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type Config, ConfigError, loadConfig } from "../../../shared/src/config/load.js";
import { JetStreamEngine } from "../../../shared/src/engine/jetstream.js";
import { createLogger, type Logger } from "../../../shared/src/log.js";
import { type PresenceService, startPresenceService } from "./service.js";

export {
  type PresenceService,
  type PresenceServiceOptions,
  startPresenceService,
} from "./service.js";

/** Opens a NATS connection with the configured servers and credentials. */
export async function connectNats(config: Config, name: string): Promise<NatsConnection> {
  if (!config.natsUrl) throw new ConfigError(["NATS_URL is required for the presence service"]);
  return connect({
    servers: [...config.natsUrl],
    name,
    user: config.natsUser,
    pass: config.natsPass,
    token: config.natsToken,
    authenticator: config.natsCredsFile
      ? credsAuthenticator(readFileSync(config.natsCredsFile))
      : undefined,
    tls: config.natsTlsCa ? { caFile: config.natsTlsCa } : undefined,
    // Presence must outlive NATS restarts: its leases lapse, never its process.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
}

/**
 * Everything a presence process runs: its own NATS connection (reports,
 * leases, KV) and a JetStream engine for the signals it emits. The lead's
 * composition root can call this in a combined process.
 */
export async function runPresence(
  config: Config,
  log: Logger,
): Promise<{ service: PresenceService; stop(): Promise<void> }> {
  const nc = await connectNats(config, "tidings-presence");
  const engine = await JetStreamEngine.connect({
    servers: [...(config.natsUrl ?? [])],
    user: config.natsUser,
    pass: config.natsPass,
    token: config.natsToken,
    tls: config.natsTlsCa ? { caFile: config.natsTlsCa } : undefined,
    replicas: config.natsReplicas >= 3 ? 3 : 1,
    name: "tidings-presence-signals",
    onError: (err) => log.warn({ err }, "signal engine error"),
  });
  const service = await startPresenceService({
    nc,
    engine,
    log,
    heartbeatMs: config.heartbeatMs,
    gatewayTimeoutMs: config.gatewayTimeoutMs,
    // Half the gateway timeout: a replica and a gateway dying together are
    // both cleaned up within lease TTL + gateway timeout (15 s by default).
    leaseTtlMs: Math.max(300, Math.floor(config.gatewayTimeoutMs / 2)),
    replicas: config.natsReplicas,
  });
  return {
    service,
    stop: async () => {
      await service.close();
      await engine.close();
      await nc.drain();
    },
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ ...process.env, TIDINGS_ROLE: "presence" });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, "tidings-presence");
  for (const w of config.warnings) log.warn(w);
  const { service, stop } = await runPresence(config, log);
  log.info({ replica: service.replicaId }, "presence service running");
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "presence service stopping");
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "presence shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`presence service failed to start: ${String(err)}\n`);
    process.exit(1);
  });
}
