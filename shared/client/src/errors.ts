/** Herald error codes (the gateway's `error.payload.code`). */
export type HeraldErrorCode =
  | "auth_failed"
  | "not_found"
  | "forbidden"
  | "invalid_payload"
  | "rate_limited"
  | "stream_full"
  | "blocked"
  | "internal";

/** Base class of every error the SDK raises. */
export class TidingsError extends Error {
  override name = "TidingsError";
}

/** The gateway refused a request: `code` is Herald's error code. */
export class HeraldError extends TidingsError {
  override name = "HeraldError";
  constructor(
    readonly code: HeraldErrorCode | string,
    message: string,
    readonly streamId?: string,
  ) {
    super(`${code}: ${message}`);
  }
  /** `internal` (storage unavailable) and `rate_limited` may succeed later; the rest will not. */
  get retryable(): boolean {
    return this.code === "internal" || this.code === "rate_limited";
  }
}

/** The gateway refused the credentials for good (unknown key, or a fresh token refused again). */
export class AuthError extends TidingsError {
  override name = "AuthError";
}

/** More publishes (or queued frames) waiting for a connection than `maxQueued`. */
export class QueueFullError extends TidingsError {
  override name = "QueueFullError";
}

/** The client was closed (by `close()` or a permanent refusal) before the request finished. */
export class ClosedError extends TidingsError {
  override name = "ClosedError";
}
