/**
 * Debian's Chromium for the browser tests, driven by playwright-core: a
 * fresh profile per launch, and a temp folder for screenshots (printed, kept
 * after the run as an artifact, never in the repo).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
/** Browser tests skip (visibly, by their describe) where there is no Chromium. */
export const hasChromium = existsSync(CHROMIUM);

// The flags that work on a machine without network access (no background fetches, no QUIC).
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowser {
  context: BrowserContext;
  /** The folder screenshots go to. */
  shots: string;
  /** Closes the browser and removes its profile; the screenshots stay. */
  close(): Promise<void>;
}

export async function launchChromium(
  what: string,
  options: { viewport?: { width: number; height: number } } = {},
): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), "tidings-chromium-"));
  const shots = await mkdtemp(join(tmpdir(), `tidings-${what}-screenshots-`));
  process.stdout.write(`${what} browser test screenshots: ${shots}\n`);
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      ...options,
    });
    return {
      context,
      shots,
      close: async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
}
