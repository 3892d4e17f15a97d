/**
 * Chat error codes (the `error.code` of a response) and the WebSocket close
 * codes we use. The chat README lists the same; `codes.test.ts` keeps them
 * in step.
 */
export const ChatCodes = {
  invalid_payload:
    "Malformed frame, unknown type or payloadType, wrong field types, frame too large or not UTF-8",
  forbidden:
    "Not allowed: only the sender may edit or delete a message; only a participant may close a call",
  not_found: "Unknown messageId (or not in this chat) or unknown callId",
  rate_limited: "Too many frames, or too many typing events",
  internal: "Server error (storage unavailable); retry the request",
} as const;

export type ChatCode = keyof typeof ChatCodes;

export const ChatClose = {
  /** Missing, bad or expired token, or unknown app key: get a fresh token. */
  authFailed: 4001,
  /** Could not keep up: reconnect; unacked events come again. */
  slowConsumer: 4008,
  /** Gateway draining: reconnect (to another gateway). */
  goingAway: 1012,
  /** App at its connection quota: try again later. */
  tryAgainLater: 1013,
  /** A frame more than 4x over maxFrameBytes (smaller ones are answered): RFC 6455's "message too big". */
  tooLarge: 1009,
} as const;

/** A request the client got wrong; answered with the code, the connection stays. */
export class ChatRequestError extends Error {
  override name = "ChatRequestError";
  constructor(
    readonly code: ChatCode,
    message: string,
  ) {
    super(message);
  }
}
