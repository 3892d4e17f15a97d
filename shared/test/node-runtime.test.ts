/**
 * The Node versions Tidings claims (package.json `engines`, the Dockerfile's
 * base images) must be ones an installed uWebSockets.js build has a native
 * binary for: without one the gateway refuses to start. Two builds are
 * installed (see shared/src/http/uws.ts); the loader picks one by ABI, and
 * that one must hold the binary.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CURRENT_BUILD, LEGACY_ABIS, LEGACY_BUILD, uwsBuildFor } from "../src/http/uws.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** NODE_MODULE_VERSION per Node major (nodejs.org/en/download/releases). */
const ABI_OF_MAJOR: Record<number, number> = { 16: 93, 18: 108, 20: 115, 22: 127, 24: 137 };
/** Where each build keeps its binaries, inside its package. */
const BINARIES: Record<string, string> = { [LEGACY_BUILD]: "binaries", [CURRENT_BUILD]: "" };

function linuxX64Abis(build: string): number[] {
  const dir = join(ROOT, "node_modules", build, BINARIES[build] ?? "");
  return readdirSync(dir)
    .map((f) => /^uws_linux_x64_(\d+)\.node$/.exec(f)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
}

/** The ABIs the build the loader picks for them has binaries for. */
function loadableAbis(abis: number[]): number[] {
  return abis.filter((abi) => linuxX64Abis(uwsBuildFor(String(abi))).includes(abi));
}

function engineMajors(): number[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    engines: { node: string };
  };
  return [...pkg.engines.node.matchAll(/>=\s*(\d+)\s*<\s*(\d+)/g)].flatMap((m) => {
    const out: number[] = [];
    for (let v = Number(m[1]); v < Number(m[2]); v++) out.push(v);
    return out;
  });
}

describe("the supported Node runtime", () => {
  it("this Node's build holds a native uWebSockets.js binary for it", () => {
    const abi = Number(process.versions.modules);
    expect(loadableAbis([abi])).toEqual([abi]);
  });

  it("the loader sends exactly the legacy build's ABIs to it", () => {
    expect(linuxX64Abis(LEGACY_BUILD).map(String).sort()).toEqual([...LEGACY_ABIS].sort());
  });

  it("engines and the Dockerfile name only Node majors whose build has binaries", () => {
    const dockerMajors = [
      ...readFileSync(join(ROOT, "Dockerfile"), "utf8").matchAll(/^FROM node:(\d+)/gm),
    ].map((m) => Number(m[1]));
    expect(engineMajors()).toEqual([20, 24]);
    expect(dockerMajors).toEqual([24, 24, 24]);
    for (const major of [...engineMajors(), ...dockerMajors]) {
      const abi = ABI_OF_MAJOR[major] ?? -1;
      expect(loadableAbis([abi]), `Node ${major}`).toEqual([abi]);
    }
  });

  it("the image's Node 24 runs on a base with glibc 2.38+ (trixie), as its uWS build needs", () => {
    const froms = [...readFileSync(join(ROOT, "Dockerfile"), "utf8").matchAll(/^FROM (\S+)/gm)];
    expect(froms.map((m) => m[1])).toEqual(Array(3).fill("node:24-trixie-slim"));
  });
});
