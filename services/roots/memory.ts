/**
 * Composition root of memory mode (no NATS_URL): one process, the memory
 * engine, in-process presence and webhooks. `npm start` without NATS and
 * the test harness both start here.
 */
import type { Config } from "../../shared/src/config/load.js";
import type { Engine } from "../../shared/src/engine/engine.js";
import { MemoryEngine } from "../../shared/src/engine/memory.js";
import type { Logger } from "../../shared/src/log.js";
import type { PresenceApi } from "../../shared/src/presence/api.js";
import { localWebhooks } from "../../shared/src/webhooks/setup.js";
import { type Gateway, startGateway } from "../gateway/src/gateway.js";
import { LocalPresence } from "../presence/src/local.js";
import { type Running, stopList } from "./running.js";

/** Parts a caller brings instead of the defaults (tests: a failing or a JetStream engine). */
export interface MemoryParts {
  /** Storage instead of a new memory engine; the caller keeps it (not closed by `stop`). */
  engine?: Engine | undefined;
  /** Presence instead of in-process presence on the engine; the caller keeps it. */
  presence?: PresenceApi | undefined;
}

export interface RunningMemory extends Running {
  gateway: Gateway;
  engine: Engine;
}

export async function startMemory(
  config: Config,
  log: Logger,
  parts: MemoryParts = {},
): Promise<RunningMemory> {
  const stops = stopList();
  const engine = parts.engine ?? new MemoryEngine();
  if (!parts.engine) stops.push(() => engine.close());
  const webhooks = localWebhooks(config, log.child({ component: "webhooks" }));
  stops.push(() => webhooks.close());
  let presence = parts.presence;
  if (!presence) {
    const local = new LocalPresence({ engine, config, log, webhooks: webhooks.sink });
    stops.push(() => local.close());
    presence = local;
  }
  const gateway = await startGateway({
    config,
    engine,
    presence,
    log,
    webhooks,
  }).catch(stops.abort);
  stops.push(() => gateway.stop());
  return {
    gateway,
    engine,
    ports: { gateway: gateway.port, metrics: gateway.metricsPort },
    stop: stops.stop,
    [Symbol.asyncDispose]: stops.stop,
  };
}
