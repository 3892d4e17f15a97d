import { readFileSync } from "node:fs";

const TYPES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "console.js": "text/javascript; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
  "icon.svg": "image/svg+xml",
};

/**
 * The page's files, read once at start and served from memory: everything
 * the console needs comes from the gateway (no CDN), so it works in an
 * air-gapped cluster.
 */
export function pageAssets(): Map<string, { type: string; body: Buffer }> {
  const out = new Map<string, { type: string; body: Buffer }>();
  for (const [name, type] of Object.entries(TYPES)) {
    const file = new URL(`./page/${name}`, import.meta.url);
    let body: Buffer;
    try {
      body = readFileSync(file);
    } catch (cause) {
      // tsc compiles the console but does not copy its page; npm run build does.
      throw new Error(
        `console page file missing: ${file.pathname} (npm run build copies the page beside the compiled console: shared/build/copy-assets.mjs)`,
        { cause },
      );
    }
    out.set(name, { type, body });
  }
  return out;
}
