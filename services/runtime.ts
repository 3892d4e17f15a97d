/**
 * The process around a composition root: loads config (exit 2 on a bad
 * one), picks the root for the mode (services/roots/memory.ts without
 * NATS_URL, services/roots/nats.ts with it), prints where it listens,
 * stops it on SIGTERM/SIGINT, and turns a failed start into one line.
 * `services/main.ts` (npm start) and the per-service mains reach `run`
 * through the `tidings start` command.
 */
import { inspect } from "node:util";
import { type Config, ConfigError, loadConfig } from "../shared/src/config/load.js";
import { ListenError } from "../shared/src/http/listen.js";
import { createLogger, type Logger } from "../shared/src/log.js";
import { NatsUnreachableError } from "../shared/src/nats/connect.js";
import type { Gateway } from "./gateway/src/gateway.js";
import { startMemory } from "./roots/memory.js";
import type { Running } from "./roots/running.js";

export async function run(role?: Config["role"]): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(
      role ? Object.assign({}, process.env, { TIDINGS_ROLE: role }) : process.env,
    );
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, "tidings");
  for (const w of config.warnings) log.warn(w);

  let running: Running;
  if (config.natsUrl) {
    // Loaded only with NATS_URL: memory mode needs none of the NATS composition.
    const { startNats } = await import("./roots/nats.js");
    running = await startNats(config, log);
  } else {
    running = await startMemory(config, log);
  }
  if (running.gateway)
    announce(log, config, running.gateway, config.natsUrl ? "jetstream" : "memory");
  onShutdown(log, running.stop);
}

export function fatal(err: unknown): never {
  // A busy port is an operator's problem, not a bug: the message says it all.
  const text =
    err instanceof ListenError || err instanceof NatsUnreachableError
      ? err.message
      : // inspect, not err.stack: the stack omits `cause`, which says what NATS answered.
        err instanceof Error
        ? inspect(err)
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
  ];
  const ops = gateway.metricsPort;
  if (ops === gateway.port) {
    lines.push(`  Health       http://${host}:${gateway.port}/healthz  /readyz  /metrics`);
  } else {
    lines.push(`  Health       http://${host}:${gateway.port}/healthz  /readyz`);
    lines.push(`  Metrics      http://${host}:${ops}/metrics   (internal port)`);
  }
  if (config.consoleSecret) lines.push(`  Console      http://${host}:${ops}/console`);
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
