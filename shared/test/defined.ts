/**
 * What a test takes for granted, said out loud: each helper returns the value
 * it was given, or fails the test with a message naming what was missing
 * (instead of a `!` that turns the miss into a TypeError further on).
 */

/** `value`, or a failure naming `what` when it is null or undefined. */
export function expectDefined<T>(value: T, what = "value"): NonNullable<T> {
  if (value === undefined || value === null) throw new Error(`expected ${what}, got ${value}`);
  return value;
}

/** `xs.at(index)` (negative counts from the end), or a failure when there is no such element. */
export function at<T>(xs: readonly T[], index: number, what = "element"): T {
  const value = xs.at(index);
  if (value === undefined)
    throw new Error(`expected ${what} at index ${index}, but there are ${xs.length}`);
  return value;
}
