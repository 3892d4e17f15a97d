export interface BackoffOptions {
  /** Delay ceiling of the first retry, in ms (default 500). */
  baseMs: number;
  /** Largest delay, in ms (default 30 000). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/**
 * Exponential backoff with full jitter: a uniformly random delay in
 * [0, min(max, base · 2^attempt)). Full jitter spreads a crowd of clients
 * that lost the same gateway, instead of having them return in waves.
 * `attempt` counts from 0.
 */
export function backoffDelay(
  attempt: number,
  { baseMs, maxMs }: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  // 2^attempt overflows to Infinity long before it matters; min() keeps it finite.
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}
