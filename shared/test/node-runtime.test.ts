/**
 * The Node versions Tidings claims (package.json `engines`, the Dockerfile's
 * base images) must be ones the installed uWebSockets.js has a native
 * binary for: without one the gateway refuses to start.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** NODE_MODULE_VERSION per Node major (nodejs.org/en/download/releases). */
const ABI_OF_MAJOR: Record<number, number> = { 16: 93, 18: 108, 20: 115, 22: 127, 24: 137 };

function linuxX64Abis(): number[] {
  const dir = join(ROOT, "node_modules", "uWebSockets.js", "binaries");
  return readdirSync(dir)
    .map((f) => /^uws_linux_x64_(\d+)\.node$/.exec(f)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
}

describe("the supported Node runtime", () => {
  it("this Node loads a native uWebSockets.js binary", () => {
    expect(linuxX64Abis()).toContain(Number(process.versions.modules));
  });

  it("engines and the Dockerfile name only Node majors uWebSockets.js has binaries for", () => {
    const abis = linuxX64Abis();
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      engines: { node: string };
    };
    const engineMajors = [...pkg.engines.node.matchAll(/>=\s*(\d+)\s*<\s*(\d+)/g)].flatMap((m) => {
      const out: number[] = [];
      for (let v = Number(m[1]); v < Number(m[2]); v++) out.push(v);
      return out;
    });
    const dockerMajors = [
      ...readFileSync(join(ROOT, "Dockerfile"), "utf8").matchAll(/^FROM node:(\d+)/gm),
    ].map((m) => Number(m[1]));
    expect(engineMajors.length).toBeGreaterThan(0);
    expect(dockerMajors.length).toBeGreaterThan(0);
    for (const major of [...engineMajors, ...dockerMajors])
      expect(abis, `Node ${major}`).toContain(ABI_OF_MAJOR[major]);
  });
});
