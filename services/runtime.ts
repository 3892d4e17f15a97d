/**
 * Composition root: builds the engine, presence and gateway for a role and
 * wires shutdown. `services/main.ts` (npm start) and the per-service mains
 * call `run`.
 */
import { type Config, ConfigError, loadConfig } from "../shared/src/config/load.js";
import type { Engine } from "../shared/src/engine/engine.js";
import { MemoryEngine } from "../shared/src/engine/memory.js";
import { ListenError } from "../shared/src/http/listen.js";
import { createLogger, type Logger } from "../shared/src/log.js";
import { NatsUnreachableError } from "../shared/src/nats/link.js";
import { webhookCounters } from "../shared/src/webhooks/metrics.js";
import { localWebhooks } from "../shared/src/webhooks/setup.js";
import { type Gateway, startGateway } from "./gateway/src/gateway.js";
import { LocalPresence } from "./presence/src/local.js";

export async function run(role?: Config["role"]): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(role ? { ...process.env, TIDINGS_ROLE: role } : process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, "tidings");
  for (const w of config.warnings) log.warn(w);

  if (config.natsUrl) {
    const { startClustered } = await import("./clustered.js");
    await startClustered(config, log);
    return;
  }
  const engine: Engine = new MemoryEngine();
  const webhooks = localWebhooks(config, log.child({ component: "webhooks" }));
  const presence = new LocalPresence({ engine, config, log, webhooks: webhooks.sink });
  const gateway = await startGateway({ config, engine, presence, log, webhooks: webhooks.sink });
  webhooks.queue?.useCounters(webhookCounters(gateway.metrics.registry));
  announce(log, config, gateway, "memory");
  onShutdown(log, async () => {
    await gateway.stop();
    await presence.close();
    await webhooks.close();
    await engine.close();
  });
}

export function fatal(err: unknown): never {
  // A busy port is an operator's problem, not a bug: the message says it all.
  const text =
    err instanceof ListenError || err instanceof NatsUnreachableError
      ? err.message
      : err instanceof Error
        ? (err.stack ?? err.message)
        : String(err);
  process.stderr.write(`tidings failed to start: ${text}\n`);
  process.exit(1);
}

export function announce(log: Logger, config: Config, gateway: Gateway, engine: string): void {
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host;
  log.info({ port: gateway.port, engine }, "tidings listening");
  const lines = [
    `Tidings listening on ${config.host}:${gateway.port} (engine: ${engine})`,
    `  Herald       ws://${host}:${gateway.port}/ws?key=APP_KEY&user_id=...&token=...`,
    `  Pusher       ws://${host}:${gateway.port}/app/APP_KEY?protocol=7   HTTP API /apps/APP_ID/...`,
    `  Broadcaster  ws://${host}:${gateway.port}/broadcaster/APP_KEY`,
    `  Chat         ws://${host}:${gateway.port}/chat/APP_KEY?token=JWT`,
    `  Foony        ws://${host}:${gateway.port}/realtime`,
    `  Health       http://${host}:${gateway.port}/healthz  /readyz  /metrics`,
  ];
  if (config.consoleSecret) lines.push(`  Console      http://${host}:${gateway.port}/console`);
  if (config.devApp) {
    lines.push(`  Demo chat    http://${host}:${gateway.port}/demo   (development app only)`);
    lines.push("  Development app (TIDINGS_APPS unset; never use in production):");
    lines.push("    id=app-id  key=app-key  secret=app-secret");
  } else {
    lines.push(`  Apps: ${config.apps.map((a) => `${a.id} (key ${a.key})`).join(", ")}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

export function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "draining");
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => handler("SIGTERM"));
  process.on("SIGINT", () => handler("SIGINT"));
}
