import type { AppConfig } from "../config/apps.js";
import { webhookHeaders } from "./events.js";
import { type DeliverBatch, originOf } from "./queue.js";

/** A receiver did not take a batch: no answer, or a non-2xx status. */
export class WebhookDeliveryError extends Error {
  override name = "WebhookDeliveryError";
  constructor(
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The app a batch names is not configured here (config differs between processes). */
export class UnknownWebhookAppError extends Error {
  override name = "UnknownWebhookAppError";
}

/**
 * POSTs a batch, signed with the app's key and secret as Pusher signs
 * webhooks. Only a 2xx counts as delivered; redirects are not followed (a
 * receiver that moved must be reconfigured, not silently re-targeted).
 */
export function httpDelivery(
  apps: (appId: string) => AppConfig | undefined,
  timeoutMs = 10_000,
): DeliverBatch {
  return async (batch) => {
    const app = apps(batch.appId);
    if (!app) throw new UnknownWebhookAppError(`webhook for unknown app ${batch.appId}`);
    let res: Response;
    try {
      res = await fetch(batch.url, {
        method: "POST",
        headers: webhookHeaders(app, batch.body),
        body: batch.body,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      throw new WebhookDeliveryError(`POST to ${originOf(batch.url)} failed`, undefined, { cause });
    }
    // Release the connection; the answer's body means nothing to us.
    await res.body?.cancel().catch(() => undefined);
    if (res.status < 200 || res.status >= 300) {
      throw new WebhookDeliveryError(`${originOf(batch.url)} answered ${res.status}`, res.status);
    }
  };
}
