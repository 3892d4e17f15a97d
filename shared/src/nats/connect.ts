/**
 * The one NATS connection of a process: the NATS composition root opens it
 * here and hands it to the engine, presence, webhooks and the cluster bus.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { Config } from "../config/load.js";
import { natsAuthOptions } from "../config/nats.js";
import type { Logger } from "../log.js";
import { LINK_OPTIONS, watchLink } from "./link.js";

/** Start-up gave up on NATS: an operator's condition, reported in one line. */
export class NatsUnreachableError extends Error {}

/**
 * Connects with the configured servers and credentials, retrying with
 * backoff for `natsConnectTimeoutMs`, so a process started before NATS (a
 * fresh cluster, a rolling restart) starts once NATS is up instead of
 * crash-looping. Once connected the link reconnects forever and logs each
 * change under `name`.
 */
export async function connectNats(
  config: Config,
  log: Logger,
  name: string,
): Promise<NatsConnection> {
  const servers = (config.natsUrl ?? []).join(",");
  const deadline = Date.now() + config.natsConnectTimeoutMs;
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      // Per attempt (`timeout`); the loop retries until the deadline.
      const nc = await connect(
        Object.assign({}, natsAuthOptions(config), { name, timeout: 2000 }, LINK_OPTIONS),
      );
      if (attempt > 1) log.info({ server: servers, attempt }, "NATS reachable");
      watchLink(nc, log, name);
      return nc;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (Date.now() + delay > deadline) {
        throw new NatsUnreachableError(
          `NATS at ${servers} not reachable after ${config.natsConnectTimeoutMs} ms (${reason})`,
        );
      }
      log.warn(
        { server: servers, attempt, retryInMs: delay, reason },
        "NATS not reachable; retrying",
      );
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}
