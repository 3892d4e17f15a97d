/**
 * A rule on the server's sources: no object literal starts with a spread and
 * has members after it (`{ ...event, via }`, `{ ...a, ...b }`). On Node 20
 * (V8 11.3) every such object gets a hidden class of its own: ~8 µs each
 * where the same object written out costs 0.17 µs, and every later read of
 * it is megamorphic (`storedEvent` in model.ts says more). Write the object
 * out, put the spread after a literal key, or use `Object.assign({}, a, b)`,
 * which builds shared classes. The CLI and the config loader run once per
 * process and the browser SDK runs on other engines, so they are not held to
 * it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { ROOT, sources } from "./sources.js";

const EXEMPT = [/^services\/cli\//, /^shared\/src\/config\//];

/** `file:line: text` of each literal that starts with a spread and has more members. */
function spreadFirstLiterals(file: string, text: string): string[] {
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (n: ts.Node): void => {
    if (
      ts.isObjectLiteralExpression(n) &&
      n.properties.length > 1 &&
      n.properties[0] !== undefined &&
      ts.isSpreadAssignment(n.properties[0])
    ) {
      const { line } = src.getLineAndCharacterOfPosition(n.getStart());
      found.push(`${file}:${line + 1}: ${n.getText().replace(/\s+/g, " ").slice(0, 80)}`);
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return found;
}

describe("hidden classes", () => {
  it("the rule sees the literals it forbids and passes the ones it allows", () => {
    const text = [
      "const a = { ...e, via };",
      "const b = { ...x, ...y };",
      "const c = { via, ...e };",
      "const d = { ...e };",
      "const f = Object.assign({}, e, { via });",
    ].join("\n");
    expect(spreadFirstLiterals("x.ts", text)).toEqual([
      "x.ts:1: { ...e, via }",
      "x.ts:2: { ...x, ...y }",
    ]);
  });

  it("no server source builds an object literal that starts with a spread", () => {
    const files = [...sources("services"), ...sources("shared/src")].filter(
      (f) => !EXEMPT.some((r) => r.test(f)),
    );
    expect(files).toContain("shared/src/engine/memory.ts");
    expect(files).toContain("services/gateway/src/core/publish.ts");
    const found = files.flatMap((f) => spreadFirstLiterals(f, readFileSync(join(ROOT, f), "utf8")));
    expect(found).toEqual([]);
  });
});
