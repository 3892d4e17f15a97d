/**
 * Broadcaster error codes (seed "Error Codes") with the HTTP status the REST
 * API answers them with, and the WebSocket close codes we use. The README
 * lists the same; `codec.test.ts` keeps them in step.
 */
export const BroadcasterCodes = {
  InvalidArgument: {
    status: 400,
    meaning:
      "Malformed frame or body, unknown method, missing or mistyped params, invalid channel name, frame or body too large (HTTP 413)",
  },
  NotFound: { status: 404, meaning: "Not subscribed to the channel; unknown app key (REST)" },
  AlreadyExists: { status: 409, meaning: "Already subscribed to the channel" },
  FailedPrecondition: {
    status: 400,
    meaning:
      "Not possible in the connection's state: too many requests or subscriptions, or a refresh token for a different user",
  },
  PermissionDenied: {
    status: 403,
    meaning:
      "Channel not in authorizedChannels, scope missing, or (REST) an API key of another app",
  },
  Unauthenticated: {
    status: 401,
    meaning: "No auth yet, rejected or expired token; (REST) missing or unknown API key",
  },
  Internal: { status: 500, meaning: "Server error; retry (storage unavailable)" },
} as const;

export type BroadcasterCode = keyof typeof BroadcasterCodes;

export const BroadcasterClose = {
  /** The URL names no app. */
  unknownApp: 4001,
  /** Could not keep up with its subscriptions. */
  slowConsumer: 4008,
  /** Gateway draining: reconnect (to another gateway). */
  goingAway: 1012,
  /** App at its connection quota: try again later. */
  tryAgainLater: 1013,
  /** A frame more than 4x over maxFrameBytes (smaller ones are answered): RFC 6455's "message too big". */
  tooLarge: 1009,
} as const;

/** A request the client got wrong; answered with the code, the connection stays. */
export class BroadcasterRequestError extends Error {
  override name = "BroadcasterRequestError";
  constructor(
    readonly code: BroadcasterCode,
    message: string,
  ) {
    super(message);
  }
}
