import { EngineUnavailableError } from "../../../../shared/src/engine/engine.js";
import { STORAGE_UNAVAILABLE } from "../core/session-error.js";

/** The statuses a server API call answers a caller's mistake with. */
export type ApiStatus = 400 | 403 | 404 | 413;

/**
 * A server API call the caller got wrong (an invalid channel or user id).
 * Every HTTP surface answers it with this status and message in its own
 * format, so the words are the same whichever route was used.
 */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ApiStatus,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Why a server API call failed, for an HTTP route to answer in its own
 * terms: the caller's mistake, storage that may be back soon (worth a
 * retry), or a bug (logged by the route, never shown).
 */
export type ApiFailure =
  | { kind: "request"; status: ApiStatus; message: string }
  | { kind: "unavailable"; message: typeof STORAGE_UNAVAILABLE }
  | { kind: "internal" };

export function failureOf(err: unknown): ApiFailure {
  if (err instanceof ApiError) return { kind: "request", status: err.status, message: err.message };
  if (err instanceof EngineUnavailableError)
    return { kind: "unavailable", message: STORAGE_UNAVAILABLE };
  return { kind: "internal" };
}
