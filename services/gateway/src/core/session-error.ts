/** Why the core refused a request; each dialect says it in its own terms. */
export type SessionRefusal = "subscription_limit" | "channel_full";

export class SessionError extends Error {
  override name = "SessionError";
  constructor(
    readonly reason: SessionRefusal,
    readonly channel: string,
    message: string,
  ) {
    super(message);
  }
}
