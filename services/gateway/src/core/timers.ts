/** setTimeout fires at once past this (about 24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `fn` at wall-clock time `atMs` (at once if it has passed), however
 * far ahead, e.g. at a token's expiry. Returns a cancel function.
 */
export function runAt(atMs: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const step = () => {
    const left = atMs - Date.now();
    if (left <= 0) {
      timer = undefined;
      fn();
      return;
    }
    timer = setTimeout(step, Math.min(left, MAX_TIMER_MS));
    // Expiry timers must not keep a stopping process alive.
    timer.unref();
  };
  timer = setTimeout(step, Math.max(0, Math.min(atMs - Date.now(), MAX_TIMER_MS)));
  timer.unref();
  return () => clearTimeout(timer);
}
