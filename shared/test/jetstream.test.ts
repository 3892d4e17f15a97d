import { afterAll, beforeAll } from "vitest";
import { JetStreamEngine } from "../src/engine/jetstream.js";
import { describeEngineContract } from "./engine.contract.js";
import { type NatsHandle, startNats } from "./nats-harness.js";

let nats: NatsHandle;
beforeAll(async () => {
  nats = await startNats({ jetstream: true });
});
afterAll(async () => {
  await nats?.stop();
});

describeEngineContract("jetstream", async () => {
  const engine = await JetStreamEngine.connect({ servers: nats.urls, name: "contract" });
  return { engine, dispose: () => engine.close() };
});
