/**
 * Foony `err` codes (seed `ErrorCode`, spec foony.md) and the WebSocket close
 * codes we use. The README lists the same; `codec.test.ts` keeps them in step.
 */
export const FoonyCodes = {
  40001:
    "Bad frame: not JSON, unknown `t`, missing or mistyped field, invalid channel name, frame too large, over the message rate or the subscription limit, second `auth`. The connection stays open.",
  40101:
    "Bad auth: first frame not `auth`, no auth within 10 s, unknown app key, wrong secret, invalid token. Then close 4001.",
  40102: "Token expired (at auth, or while connected). Then close 4002.",
  40300: "The token's capability does not allow this operation on this channel.",
  40400: "Not subscribed (`unsub`), or not present (`pres leave`).",
  50000: "Server error (storage unavailable, app over its connection quota); retry.",
} as const;

export type FoonyCode = keyof typeof FoonyCodes;

export const FoonyError = {
  badFrame: 40001,
  badAuth: 40101,
  authExpired: 40102,
  forbidden: 40300,
  notFound: 40400,
  server: 50000,
} as const satisfies Record<string, FoonyCode>;

export const FoonyClose = {
  /** No valid `auth` (timeout, wrong first frame, bad credentials): get new credentials. */
  authFailed: 4001,
  /** The token expired: reconnect with a fresh one. */
  authExpired: 4002,
  /** Silent for 2 × keepAliveMs. */
  idle: 4003,
  /** Could not keep up: reconnect and resume with lastMessageId. */
  slowConsumer: 4008,
  /** Gateway draining: reconnect (to another gateway) and resume. */
  goingAway: 1012,
  /** App at its connection quota: try again later. */
  tryAgainLater: 1013,
  /** A frame more than 4x over maxFrameBytes (smaller ones are answered): RFC 6455's "message too big". */
  tooLarge: 1009,
} as const;

/** A request the client got wrong; answered with `err`, the connection stays. */
export class FoonyRequestError extends Error {
  override name = "FoonyRequestError";
  constructor(
    readonly code: FoonyCode,
    message: string,
  ) {
    super(message);
  }
}
