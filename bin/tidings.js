#!/usr/bin/env node
// The `tidings` command. In a checkout it runs the TypeScript sources through
// tsx, so it never runs a stale build; in the image, which holds only the
// compiled files, it runs dist/.
import { existsSync } from "node:fs";

const source = new URL("../services/cli/main.ts", import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  cli = await import(source.href);
} else {
  cli = await import(new URL("../dist/services/cli/main.js", import.meta.url).href);
}
await cli.main(process.argv.slice(2));
