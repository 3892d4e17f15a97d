/**
 * Pusher protocol 7 error and close codes, and the HTTP statuses of the
 * Pusher HTTP API, as Tidings uses them. Pusher's ranges decide what
 * `pusher-js` does next: 4000–4099 never reconnect, 4100–4199 reconnect
 * after backing off, 4200–4299 reconnect at once, 4300–4399 are errors the
 * connection survives. README's Pusher section lists the same codes; a test
 * keeps them in step.
 */
export const PusherClose = {
  /** The key in `/app/{key}` names no app. */
  unknownApp: 4001,
  /** The app is at its connection quota on this gateway. */
  overQuota: 4004,
  /** `protocol` is not an integer. */
  invalidVersion: 4006,
  /** `protocol` is not 7. */
  unsupportedProtocol: 4007,
  /** No `protocol` query parameter. */
  noProtocol: 4008,
  /** Bad `pusher:signin`, or the user's connections were terminated through the HTTP API. */
  unauthorized: 4009,
  /** The connection could not keep up with its events (slow consumer). */
  overCapacity: 4100,
  /** Gateway draining: reconnect now (to another gateway). */
  reconnect: 4200,
  /** A `pusher:ping` went unanswered for the pong timeout. */
  pongTimeout: 4201,
  /** A frame more than 4x over maxFrameBytes (smaller ones are answered): RFC 6455's "message too big". */
  tooLarge: 1009,
} as const;

/** Codes sent in `pusher:error` frames that leave the connection open. */
export const PusherErrorCode = {
  /** Frame over the size limit, or client events over the rate limit. */
  rejected: 4301,
} as const;

/**
 * `status` of `pusher:subscription_error` for a bad channel name: Soketi's
 * value for its channel-name refusals, so apps migrating from it keep it.
 */
export const PusherSubscriptionStatus = {
  /** The channel name breaks the naming rules (too long, or characters outside the set). */
  invalidChannelName: 4009,
} as const;

export type PusherCloseCode = (typeof PusherClose)[keyof typeof PusherClose];

/** Text of each code, as sent in `pusher:error` and close frames. */
export const PusherCodeText: Record<number, string> = {
  1009: "Client sent message too large",
  4001: "Application does not exist",
  4004: "Application is over connection quota",
  4006: "Invalid version string format",
  4007: "Unsupported protocol version",
  4008: "No protocol version supplied",
  4009: "Connection is unauthorized",
  4100: "Over capacity",
  4200: "Generic reconnect immediately",
  4201: "Pong reply not received",
  4301: "Client event rejected",
};

/** HTTP API statuses with Pusher's text bodies. */
export const PusherHttpStatus = {
  400: "400 Bad Request",
  401: "401 Unauthorized",
  403: "403 Forbidden",
  404: "404 Not Found",
  413: "413 Payload Too Large",
} as const;

export type PusherHttpCode = keyof typeof PusherHttpStatus;

/** An HTTP API request the caller got wrong; answered with the status and a text body. */
export class PusherHttpError extends Error {
  override name = "PusherHttpError";
  constructor(
    readonly status: PusherHttpCode,
    message: string,
  ) {
    super(message);
  }
}
