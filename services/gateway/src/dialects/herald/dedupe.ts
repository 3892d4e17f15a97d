import { createHash } from "node:crypto";
import type { Json } from "../../../../../shared/src/model.js";
import type { Ref } from "./codec.js";

/**
 * The idempotency key of a Herald publish (the engine adds app and stream).
 *
 * A `ref` alone cannot be the key: in most clients it is a per-connection
 * request counter that starts again after a reconnect, so a new event sent
 * as `ref: 1` on the next connection would be answered with the old event's
 * ack and lost. The connection id cannot be part of it either: the resend
 * that deduplication exists for — a client that reconnects without knowing
 * whether its publish got through and sends it again — comes on a new
 * connection. Herald has no other idempotency field. So a resend is what a
 * client resending would send: the same user, `ref`, `type`, `body` and
 * `meta`; a digest of the content keeps the key small. Sending the very same
 * event under the same `ref` twice within the window stores it once
 * (README, Herald: "Resends").
 */
export function publishKey(
  userId: string,
  ref: Exclude<Ref, undefined>,
  type: string,
  body: Json,
  meta: { [key: string]: Json } | undefined,
): string {
  const content = createHash("sha256")
    .update(JSON.stringify([type, body, meta ?? null]))
    .digest("base64url");
  return JSON.stringify(["herald", userId, ref, content]);
}
