/**
 * Herald error codes (seed "Error codes") and the WebSocket close codes we
 * use. README's Herald section lists the same; a test keeps them in step.
 */
export const HeraldCodes = {
  auth_failed: "Invalid or expired token (auth_error, or error at expiry; then close 4001)",
  not_found: "Stream or resource does not exist (e.g. unknown event_id in a reaction)",
  forbidden: "Not authorized for this action (stream not in the token)",
  invalid_payload:
    "Malformed frame, unknown type, wrong field types, invalid stream id, frame too large",
  rate_limited: "Too many requests (message rate, ephemeral event rate, subscription limit)",
  stream_full: "Stream member limit reached (presence- streams)",
  blocked: "User is blocked in this stream",
  internal: "Server error; retry (storage unavailable)",
} as const;

export type HeraldCode = keyof typeof HeraldCodes;

export const HeraldClose = {
  /** Bad or expired token; the client needs a fresh one. */
  authFailed: 4001,
  /** Could not keep up; reconnect and replay with last_seq. */
  slowConsumer: 4008,
  /** App at its connection quota: try again later. */
  tryAgainLater: 1013,
  /** Gateway draining: reconnect (to another gateway). */
  goingAway: 1012,
  /** A frame more than 4x over maxFrameBytes (smaller ones are answered): RFC 6455's "message too big". */
  tooLarge: 1009,
} as const;

/** A request the client got wrong; answered with the code, the connection stays. */
export class HeraldRequestError extends Error {
  override name = "HeraldRequestError";
  constructor(
    readonly code: HeraldCode,
    message: string,
  ) {
    super(message);
  }
}
