import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { loadConfig } from "../../../shared/src/config/load.js";
import type { Engine } from "../../../shared/src/engine/engine.js";
import { createLogger } from "../../../shared/src/log.js";
import { type MemoryParts, startMemory } from "../../roots/memory.js";
import type { Gateway } from "../src/gateway.js";

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
 * A real gateway on a free port, in this process, started by the memory
 * composition root as `npm start` runs it (services/roots/memory.ts), on
 * the memory engine or the engine/presence given (kept by the caller).
 * `env` takes config variables as in production.
 */
export async function startTestGateway(
  options: MemoryParts & { env?: Record<string, string> } = {},
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
  const running = await startMemory(config, log, {
    engine: options.engine,
    presence: options.presence,
  });
  const { gateway, engine, stop } = running;
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

/** A gateway that closes slow consumers after 64 KiB queued and takes 100 KB events fast. */
export const SLOW_CONSUMER_ENV = {
  TIDINGS_SLOW_CONSUMER_BYTES: "65536",
  TIDINGS_MAX_MESSAGE_RATE: "100000",
  TIDINGS_MAX_FRAME_BYTES: "200000",
};

/** A 100 KB payload: a few of them fill a paused client's kernel buffers. */
export const BIG = "y".repeat(100_000);

/**
 * Publishes with `publishOne` until the gateway has closed a slow consumer
 * (at most `max` publishes); resolves with whether it did.
 */
export async function publishUntilSlowClose(
  g: TestGateway,
  publishOne: () => Promise<unknown>,
  max = 2000,
): Promise<boolean> {
  for (let i = 0; i < max && (await slowCloses(g)) === 0; i++) await publishOne();
  return (await slowCloses(g)) > 0;
}

/** A port nothing listens on right now (the OS picks it), for a test that must name one. */
export async function unusedPort(): Promise<number> {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}
