#!/usr/bin/env node
/**
 * The second half of `npm run build`: tsc emits only what it compiles, but
 * the gateway also reads files beside its modules at run time (the console's
 * page, the demo's page and script) and the demo serves the SDK's browser
 * build. This copies them into the build folder at the same paths, so the
 * compiled gateway finds them where the sources do.
 *
 * Usage: node shared/build/copy-assets.mjs <outDir>
 */
import { cpSync, existsSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** Files read at run time: anything under the compiled trees that tsc does not emit. */
const ASSET = /\.(html|css|svg|js)$/;
const SKIP_DIR = new Set(["node_modules", "test", "dist"]);

const out = process.argv[2];
if (!out) {
  process.stderr.write("usage: copy-assets.mjs <outDir>\n");
  process.exit(2);
}
const outDir = resolve(out);

function* assets(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIR.has(entry.name)) yield* assets(path);
    } else if (ASSET.test(entry.name)) yield path;
  }
}

let copied = 0;
for (const tree of ["services", "shared/src"]) {
  for (const file of assets(join(ROOT, tree))) {
    cpSync(file, join(outDir, relative(ROOT, file)));
    copied++;
  }
}
// The demo's SDK (`npm run build:client`): optional, the demo says so when it is missing.
const sdk = join(ROOT, "shared/client/dist");
if (existsSync(sdk)) cpSync(sdk, join(outDir, "shared/client/dist"), { recursive: true });
process.stdout.write(`copied ${copied} assets${existsSync(sdk) ? " and the SDK build" : ""}\n`);
