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
    out.set(name, { type, body: readFileSync(new URL(`./page/${name}`, import.meta.url)) });
  }
  return out;
}
