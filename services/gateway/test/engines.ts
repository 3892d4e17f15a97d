import type { Engine } from "../../../shared/src/engine/engine.js";
import { JetStreamEngine } from "../../../shared/src/engine/jetstream.js";
import { MemoryEngine } from "../../../shared/src/engine/memory.js";
import { startNats } from "../../../shared/test/nats-harness.js";

export interface TestEngine {
  engine: Engine;
  stop(): Promise<void>;
}

/**
 * Both engines, for `describe.each`: the memory engine answers within one
 * turn of the event loop, JetStream after network round trips, so races
 * between a client's requests show on the second.
 */
export const ENGINES: [string, () => Promise<TestEngine>][] = [
  ["memory", async () => ({ engine: new MemoryEngine(), stop: async () => {} })],
  [
    "jetstream",
    async () => {
      const nats = await startNats({ jetstream: true });
      try {
        const engine = await JetStreamEngine.connect({ servers: nats.urls, name: "gateway-test" });
        return {
          engine,
          stop: async () => {
            await engine.close();
            await nats.stop();
          },
        };
      } catch (err) {
        await nats.stop();
        throw err;
      }
    },
  ],
];
