/**
 * Pusher webhook events and bodies, as Pusher documents them. Pure: no I/O,
 * no clock (the caller passes `time_ms`).
 *
 * Body: `{"time_ms": <ms since epoch>, "events": [{"name": ..., "channel": ..., ...}]}`,
 * signed as `X-Pusher-Signature: hex(HMAC_SHA256(app_secret, body))` with
 * `X-Pusher-Key: app_key`.
 */
import { createHmac } from "node:crypto";

export const WEBHOOK_EVENT_TYPES = [
  "channel_occupied",
  "channel_vacated",
  "member_added",
  "member_removed",
  "client_event",
  "cache_miss",
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export type WebhookEvent =
  | { name: "channel_occupied" | "channel_vacated" | "cache_miss"; channel: string }
  | { name: "member_added" | "member_removed"; channel: string; user_id: string }
  | {
      name: "client_event";
      channel: string;
      event: string;
      /** The client's data as a JSON string, as Pusher sends it. */
      data: string;
      socket_id: string;
      /** Presence channels only: the sender's user id. */
      user_id?: string;
    };

export function isWebhookEventType(name: unknown): name is WebhookEventType {
  return (WEBHOOK_EVENT_TYPES as readonly unknown[]).includes(name);
}

export function webhookBody(timeMs: number, events: readonly WebhookEvent[]): string {
  return JSON.stringify({ time_ms: timeMs, events });
}

/** `X-Pusher-Signature`: hex HMAC-SHA256 of the exact body bytes with the app secret. */
export function signWebhook(secret: string, body: string): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

export function webhookHeaders(app: { key: string; secret: string }, body: string) {
  return {
    "content-type": "application/json",
    "x-pusher-key": app.key,
    "x-pusher-signature": signWebhook(app.secret, body),
  };
}
