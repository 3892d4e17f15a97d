import { describe, expect, it } from "vitest";
import { startCluster } from "../../../shared/test/nats-harness.js";
import { heraldConnect, heraldUrl, request } from "./herald-client.js";
import { FAST_PRESENCE, spawnTidings } from "./processes.js";

describe("a fresh cluster", () => {
  // Two gateways creating the same R3 stream and KV buckets at once used to
  // report ready while one of them still timed out on its first reads, so its
  // first subscribes failed with `internal` after 5 s.
  it("serves every subscribe sent the moment both gateways are ready", async () => {
    await using nats = await startCluster(3);
    const env = { NATS_URL: nats.urls.join(","), NATS_REPLICAS: "3", ...FAST_PRESENCE };
    await using presence = await spawnTidings("presence", env);
    void presence;
    // Each gateway on its own node, both starting at once, as in a rollout.
    const [g1, g2] = await Promise.all([
      spawnTidings("gateway", { ...env, NATS_URL: nats.url(0) }),
      spawnTidings("gateway", { ...env, NATS_URL: nats.url(2) }),
    ]);
    await using _g1 = g1;
    await using _g2 = g2;
    for (const g of [g1, g2]) expect((await fetch(g.http("/readyz"))).status).toBe(200);
    const replies = await Promise.all(
      [g1, g2].flatMap((g, gi) =>
        Array.from({ length: 5 }, async (_, i) => {
          const stream = `cold-${gi}-${i}`;
          const c = await heraldConnect(heraldUrl(g.url, `u${gi}-${i}`, [stream]));
          // Longer than any single storage timeout, so a stalled first read shows as an error.
          const r = await request(c, "subscribe", { stream_id: stream }, 15_000);
          c.close();
          return { stream, type: r.type, payload: r.payload };
        }),
      ),
    );
    expect(replies.filter((r) => r.type !== "subscribed")).toEqual([]);
  });
});
