import { describeEngineContract } from "../../test/engine.contract.js";
import { MemoryEngine } from "./memory.js";

describeEngineContract("memory", async () => {
  const engine = new MemoryEngine();
  return { engine, dispose: () => engine.close() };
});
