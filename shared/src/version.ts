import { readFileSync } from "node:fs";

let cached: string | undefined;

/**
 * Tidings' version from package.json (`--version`, `tidings_build_info`),
 * which sits two levels up from the sources and three from the compiled files.
 */
export function tidingsVersion(): string {
  cached ??= read();
  return cached;
}

function read(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "tidings") return pkg.version ?? "unknown";
    } catch {
      // not at this level
    }
  }
  return "unknown";
}
