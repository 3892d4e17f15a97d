import {
  type Engine,
  EngineUnavailableError,
  type PublishResult,
} from "../../../../shared/src/engine/engine.js";
import { type EventInput, eventInput } from "../../../../shared/src/model.js";
import type { Metrics } from "../metrics.js";

/** Who publishes: the dialect (for metrics) and, optionally, a resend key. */
export interface PublishFrom {
  dialect: string;
  /** Idempotency key (see `PublishOptions`): a resend within the dedupe window stores nothing. */
  idempotencyKey?: string | undefined;
  /** Stored with the event as `via` (default: the dialect): an HTTP API or the console. */
  via?: string | undefined;
}

/**
 * Stores one event and records how long its acknowledgement took. Every
 * publish path (client frames in every dialect, the HTTP APIs) goes through
 * this one function, so `tidings_publish_seconds` counts each publish once.
 */
export type Publish = (
  appId: string,
  channel: string,
  event: EventInput,
  from: PublishFrom,
) => Promise<PublishResult>;

export function createPublish(engine: Engine, metrics: Metrics): Publish {
  return async (appId, channel, event, from) => {
    const started = performance.now();
    const stored = eventInput(event, from.via ?? from.dialect);
    let result: PublishResult;
    try {
      result = await engine.publish(appId, channel, stored, {
        idempotencyKey: from.idempotencyKey,
      });
    } catch (err) {
      const reason = err instanceof EngineUnavailableError ? "unavailable" : "rejected";
      metrics.publishErrors.inc({ app: appId, dialect: from.dialect, reason });
      throw err;
    }
    metrics.publishLatency.observe({ dialect: from.dialect }, (performance.now() - started) / 1000);
    metrics.published.inc({ app: appId, dialect: from.dialect });
    return result;
  };
}
