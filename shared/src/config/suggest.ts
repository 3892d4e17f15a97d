/**
 * "Did you mean" for misspelt config keys: a typo in an app object used to
 * be ignored, so `allowedOrigin` silently allowed every Origin.
 */

/** The known name closest to `name`, if it is close enough to be a likely typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(lower, k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  // A third of the name's length catches dropped plurals, swapped letters and
  // snake/camel case mix-ups without suggesting unrelated words for short keys.
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

/** `<at>.<name>: unknown field (did you mean <x>?)`, the message every object parser uses. */
export function unknownField(at: string, name: string, known: readonly string[]): string {
  const hint = closest(name, known);
  return `${at}.${name}: unknown field${hint ? ` (did you mean ${hint}?)` : ""}; known: ${known.join(", ")}`;
}

/** Levenshtein distance (insert, delete, substitute); keys are short, so O(n·m) is fine. */
function distance(a: string, b: string): number {
  // One row of the table at a time: row[j] is the distance from a's first i characters to b's first j.
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  let last = b.length; // row[b.length]
  for (let i = 1; i <= a.length; i++) {
    let diag = 0; // the previous row's [j - 1]
    let left = i; // this row's [j - 1]
    row = row.map((up, j) => {
      if (j > 0) left = Math.min(up + 1, left + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
      return left;
    });
    last = left;
  }
  return last;
}
