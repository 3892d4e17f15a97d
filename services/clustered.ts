import type { Config } from "../shared/src/config/load.js";
import { natsAuthOptions } from "../shared/src/config/nats.js";
import { JetStreamEngine } from "../shared/src/engine/jetstream.js";
import type { Logger } from "../shared/src/log.js";
import { startGateway } from "./gateway/src/gateway.js";
import { NatsPresenceClient } from "./presence/src/client.js";
import { connectNats, runPresence } from "./presence/src/run.js";
import { announce, onShutdown } from "./runtime.js";

/**
 * NATS composition: the gateway on JetStream with the presence client, the
 * presence service, or both in one process (TIDINGS_ROLE).
 */
export async function startClustered(config: Config, log: Logger): Promise<void> {
  const stops: (() => Promise<void>)[] = [];
  if (config.role !== "gateway") {
    const presence = await runPresence(config, log.child({ service: "presence" }));
    log.info({ replica: presence.service.replicaId }, "presence service running");
    stops.push(presence.stop);
  }
  if (config.role !== "presence") {
    const engine = await JetStreamEngine.connect({
      ...natsAuthOptions(config),
      replicas: config.natsReplicas >= 3 ? 3 : 1,
      name: "tidings-gateway",
      onError: (err) => log.warn({ err }, "engine background error"),
    });
    const nc = await connectNats(config, "tidings-gateway-presence");
    const presence = new NatsPresenceClient({ nc, heartbeatMs: config.heartbeatMs, log });
    const gateway = await startGateway({ config, engine, presence, log });
    announce(log, config, gateway, "jetstream");
    // Gateway first: it drains clients while presence and NATS are still up.
    stops.unshift(async () => {
      await gateway.stop();
      await presence.close();
      await nc.drain();
      await engine.close();
    });
  }
  onShutdown(log, async () => {
    for (const stop of stops) await stop();
  });
}
