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

/** What every dialect and HTTP route tells a client while storage is down (it may retry). */
export const STORAGE_UNAVAILABLE = "storage temporarily unavailable; retry";

/** The same while no presence replica answers (one is failing over). */
export const PRESENCE_UNAVAILABLE = "presence temporarily unavailable; retry";
