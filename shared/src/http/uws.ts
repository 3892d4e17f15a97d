/**
 * The one place uWebSockets.js is loaded at run time (type imports may name
 * "uWebSockets.js" directly). Two builds are installed because neither
 * covers every Node Tidings runs on:
 *
 * - `uWebSockets.js` (`@trufflesuite/uws-js-unofficial` 20.30): binaries for
 *   Node 16/18/20 that load on glibc 2.36 (Debian bookworm).
 * - `@btc-vision/uwebsockets.js` 20.57 (an optional dependency): binaries for
 *   Node 20/22/24/25, but built against glibc 2.38 (Debian trixie and newer).
 *
 * The build is picked by the running Node's ABI (`process.versions.modules`),
 * so Node 20 keeps the build it has always used, on any glibc.
 */
import { createRequire } from "node:module";

type Uws = typeof import("uWebSockets.js");

/** ABIs `@trufflesuite/uws-js-unofficial` 20.30 ships linux binaries for. */
export const LEGACY_ABIS: readonly string[] = ["93", "108", "115"];
export const LEGACY_BUILD = "uWebSockets.js";
export const CURRENT_BUILD = "@btc-vision/uwebsockets.js";

/** The build for this Node: its package name. */
export function uwsBuildFor(abi: string): string {
  return LEGACY_ABIS.includes(abi) ? LEGACY_BUILD : CURRENT_BUILD;
}

function load(): Uws {
  const require = createRequire(import.meta.url);
  const build = uwsBuildFor(process.versions.modules);
  try {
    return require(build) as Uws;
  } catch (err) {
    throw new Error(
      `no uWebSockets.js build loads on Node ${process.version} (ABI ${process.versions.modules}): ${build} failed (it needs glibc 2.38+ for Node 22/24); see README "Requirements": ${(err as Error).message}`,
    );
  }
}

const uWS: Uws = load();
export default uWS;
