import { loadConfig } from "../../../shared/src/config/load.js";
import type { Engine } from "../../../shared/src/engine/engine.js";
import { MemoryEngine } from "../../../shared/src/engine/memory.js";
import { createLogger } from "../../../shared/src/log.js";
import type { PresenceApi } from "../../../shared/src/presence/api.js";
import { localWebhooks } from "../../../shared/src/webhooks/setup.js";
import { LocalPresence } from "../../presence/src/local.js";
import { type Gateway, startGateway } from "../src/gateway.js";

export const TEST_APP = { id: "app-id", key: "app-key", secret: "app-secret" };

export interface TestGateway extends AsyncDisposable {
  gateway: Gateway;
  engine: Engine;
  port: number;
  url: (path: string) => string;
  http: (path: string) => string;
  stop(): Promise<void>;
}

/**
 * A real gateway on a free port, in this process, on the memory engine (or
 * the engine/presence given). `env` takes config variables as in production.
 */
export async function startTestGateway(
  options: { env?: Record<string, string>; engine?: Engine; presence?: PresenceApi } = {},
): Promise<TestGateway> {
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    TIDINGS_DRAIN_SECONDS: "0",
    TIDINGS_APPS: JSON.stringify([TEST_APP]),
    ...options.env,
  });
  const log = createLogger(config.logLevel, "test-gateway");
  const engine = options.engine ?? new MemoryEngine();
  const webhooks = localWebhooks(config, log);
  const presence =
    options.presence ?? new LocalPresence({ engine, config, log, webhooks: webhooks.sink });
  const gateway = await startGateway({ config, engine, presence, log, webhooks: webhooks.sink });
  const stop = async () => {
    await gateway.stop();
    if (!options.presence) await presence.close();
    await webhooks.close();
    if (!options.engine) await engine.close();
  };
  return {
    gateway,
    engine,
    port: gateway.port,
    url: (path) => `ws://127.0.0.1:${gateway.port}${path}`,
    http: (path) => `http://127.0.0.1:${gateway.port}${path}`,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Slow-consumer closes the gateway has counted (its metric, summed over dialects). */
export async function slowCloses(g: TestGateway): Promise<number> {
  const m = await g.gateway.metrics.slowConsumerCloses.get();
  return m.values.reduce((n, v) => n + v.value, 0);
}
