/**
 * One place for how a NATS link shows up in the log: every connection of a
 * gateway or presence process logs its disconnects, reconnects and give-ups
 * the same way, with the server URL, so an operator sees the outage in one
 * line per connection instead of guessing from failing requests.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { Config } from "../config/load.js";
import { natsAuthOptions } from "../config/nats.js";
import type { Logger } from "../log.js";

/** Logs one link event of the named connection; the engine's `onLink` calls it too. */
export function logLinkEvent(log: Logger, connection: string, event: string, server?: string) {
  if (event === "reconnect") log.info({ connection, server }, "NATS link back");
  else if (event === "disconnect") log.warn({ connection, server }, "NATS link lost");
  else if (event === "staleConnection") log.warn({ connection, server }, "NATS link stale");
  else log.warn({ connection, server, event }, "NATS link error");
}

/** Follows a connection's status until it closes. */
export function watchLink(nc: NatsConnection, log: Logger, connection: string): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect" || s.type === "staleConnection") {
        logLinkEvent(log, connection, s.type, "server" in s ? String(s.server) : undefined);
      } else if (s.type === "error") {
        log.warn({ connection, err: { message: String(s.error) } }, "NATS link error");
      }
    }
  })();
}

/** Start-up gave up on NATS: an operator's condition, reported in one line. */
export class NatsUnreachableError extends Error {}

/**
 * Waits until NATS accepts a connection, retrying with backoff for the
 * configured time, so a gateway started before NATS (a fresh cluster, a
 * rolling restart) starts once NATS is up instead of crash-looping.
 */
export async function waitForNats(config: Config, log: Logger): Promise<void> {
  const servers = (config.natsUrl ?? []).join(",");
  const deadline = Date.now() + config.natsConnectTimeoutMs;
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connect({
        ...natsAuthOptions(config),
        name: "tidings-probe",
        timeout: 2000,
      });
      await nc.close();
      if (attempt > 1) log.info({ server: servers, attempt }, "NATS reachable");
      return;
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
