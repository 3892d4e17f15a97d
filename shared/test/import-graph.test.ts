/**
 * Import rules a reader can rely on, checked on the sources: start-up
 * (`services/*.ts`, `services/roots/`) has no import circle, and the engine
 * and webhooks never import each other. Static and dynamic relative imports
 * count, type-only ones too (a circle of types is still a circle to read).
 */
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, sources } from "./sources.js";

/** File → the files it imports (relative specifiers only). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const spec = /\bfrom\s+"(\.[^"]+)"|\bimport\(\s*"(\.[^"]+)"\s*\)/g;
  for (const file of [...sources("services"), ...sources("shared/src")]) {
    const text = readFileSync(join(ROOT, file), "utf8");
    const deps = [...text.matchAll(spec)].map((m) =>
      relative(ROOT, resolve(ROOT, dirname(file), (m[1] ?? m[2] ?? "").replace(/\.js$/, ".ts"))),
    );
    graph.set(file, deps);
  }
  return graph;
}

/** A circle through `start` (its files in order), or null. */
function circleThrough(graph: Map<string, string[]>, start: string): string[] | null {
  const seen = new Set<string>();
  const walk = (file: string, path: string[]): string[] | null => {
    for (const next of graph.get(file) ?? []) {
      if (next === start) return path;
      if (seen.has(next)) continue;
      seen.add(next);
      const found = walk(next, [...path, next]);
      if (found) return found;
    }
    return null;
  };
  return walk(start, [start]);
}

describe("import graph", () => {
  const graph = importGraph();

  it("start-up files import no circle", () => {
    const startup = [...graph.keys()].filter((f) => /^services\/([^/]+|roots\/[^/]+)\.ts$/.test(f));
    expect(startup).toContain("services/runtime.ts");
    expect(startup).toContain("services/roots/nats.ts");
    for (const file of startup) expect(circleThrough(graph, file)).toBeNull();
  });

  it("the engine and webhooks do not import each other", () => {
    const across = [...graph].flatMap(([file, deps]) =>
      deps
        .filter(
          (d) =>
            (file.startsWith("shared/src/engine/") && d.startsWith("shared/src/webhooks/")) ||
            (file.startsWith("shared/src/webhooks/") && d.startsWith("shared/src/engine/")),
        )
        .map((d) => `${file} -> ${d}`),
    );
    expect(across).toEqual([]);
  });
});
