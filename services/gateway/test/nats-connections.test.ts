import { describe, expect, it } from "vitest";
import { startNats } from "../../../shared/test/nats-harness.js";
import { FAST_PRESENCE, spawnTidings } from "./processes.js";

describe("NATS connections", () => {
  it("each process holds one connection, named for its role, shared by all its parts", async () => {
    await using nats = await startNats();
    const env = { NATS_URL: nats.urls[0] as string, ...FAST_PRESENCE };
    // Ready means started: a gateway prints where it listens, presence that it runs.
    await using _presence = await spawnTidings("presence", env);
    await using _gateway = await spawnTidings("gateway", env);
    await using _both = await spawnTidings("all", env);
    const names = (await nats.clients(0)).map((c) => c.name).sort();
    // Engine, presence client or service, webhooks and the console bus all ride on it.
    expect(names).toEqual(["tidings", "tidings-gateway", "tidings-presence"]);
  });
});
