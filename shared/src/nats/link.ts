/**
 * One place for how a NATS link behaves and shows up in the log: every
 * connection of a gateway or presence process reconnects the same way and
 * logs its disconnects, reconnects and give-ups with the server URL, so an
 * operator sees the outage in one line per connection instead of guessing
 * from failing requests.
 */
import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "../log.js";

/** Options of every long-lived Tidings connection (the process's one, or an engine's own). */
export const LINK_OPTIONS = {
  // Processes outlive NATS restarts: readiness and leases reflect the link, never the process.
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  // A link that is open but dead (no FIN, e.g. a partition) is found by
  // unanswered pings: in ~10 s instead of the client's default 4 minutes.
  pingInterval: 5000,
  maxPingOut: 2,
  // Async stack traces cost ~40% of request throughput in the client.
  noAsyncTraces: true,
} as const satisfies ConnectionOptions;

/** Logs one link event of the named connection. */
function logLinkEvent(log: Logger, connection: string, event: string, server?: string) {
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
