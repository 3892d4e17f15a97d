/**
 * What a composition root hands back: the parts a caller may look at and
 * one way to stop them all. `services/runtime.ts` (the process) and the
 * test harness (`services/gateway/test/harness.ts`) use the same handles.
 */
import type { Gateway } from "../gateway/src/gateway.js";

export interface Running extends AsyncDisposable {
  /** The gateway, when the role runs one (all but `presence`). */
  gateway: Gateway | undefined;
  /** Where this process listens: the gateway's port, or a lone presence replica's probes. */
  ports: {
    gateway?: number | undefined;
    probes?: number | undefined;
    /** `/metrics` (and a gateway's console): TIDINGS_METRICS_PORT's listener, or the port above. */
    metrics?: number | undefined;
  };
  /**
   * Stops every part, the gateway first (it drains clients while presence
   * and NATS are still up), the connection last. Later calls wait for the first.
   */
  stop(): Promise<void>;
}

/**
 * Stops run in reverse order of start, so a root pushes each part's stop as
 * it starts it; `stop` is idempotent. A root whose start fails calls
 * `abort`: what did start is stopped, best effort, before the error goes on.
 */
export function stopList() {
  const stops: (() => Promise<void> | void)[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      for (const s of stops) await s();
    })();
    return stopping;
  };
  return {
    /** Registers a started part's stop (it runs before the parts started earlier). */
    push(s: () => Promise<void> | void): void {
      stops.unshift(s);
    },
    stop,
    async abort(err: unknown): Promise<never> {
      await stop().catch(() => {});
      throw err;
    },
  };
}
