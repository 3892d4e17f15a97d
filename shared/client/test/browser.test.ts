/**
 * The demo chat (built on the SDK) in a real browser: Debian's Chromium,
 * driven by playwright-core. Two tabs chat through a gateway on NATS that
 * restarts in the middle; nothing is lost or shown twice.
 */
import { execFileSync } from "node:child_process";
import { createServer, type Server, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FAST_PRESENCE,
  spawnTidings,
  type TidingsProcess,
} from "../../../services/gateway/test/processes.js";
import { hasChromium, launchChromium, type TestBrowser } from "../../test/browser.js";
import { type NatsHandle, startNats } from "../../test/nats-harness.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

let nats: NatsHandle;
let gateway: TidingsProcess;
let browser: TestBrowser;
let proxy: Server;
let proxyPort: number;

/**
 * The page's origin: a TCP relay to whichever gateway process runs now. The
 * restarted gateway gets a new port because the old one is held in TIME_WAIT
 * by the connections it closed (see the report on exclusive listen).
 */
function startRelay(): Promise<void> {
  proxy = createServer((down) => {
    const up = tcpConnect(gateway.port, "127.0.0.1");
    const end = () => {
      down.destroy();
      up.destroy();
    };
    down.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
    down.pipe(up);
    up.pipe(down);
  });
  return new Promise((resolve) =>
    proxy.listen(0, "127.0.0.1", () => {
      proxyPort = (proxy.address() as { port: number }).port;
      resolve();
    }),
  );
}

/** `npm start` on NATS with the development app, which is what turns the demo on. */
const startGateway = () =>
  spawnTidings("all", { NATS_URL: nats.url(0), TIDINGS_APPS: "", ...FAST_PRESENCE });

beforeAll(async () => {
  // The page loads the SDK's browser build; make sure it is this tree's.
  execFileSync(
    process.execPath,
    [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "shared/client/tsconfig.json"],
    {
      cwd: ROOT,
    },
  );
  nats = await startNats();
  gateway = await startGateway();
  await startRelay();
  browser = await launchChromium("demo");
}, 90_000);

afterAll(async () => {
  await browser?.close();
  proxy?.close();
  await gateway?.kill();
  await nats?.stop();
});

const texts = (page: Page) => page.locator("#messages .msg .text").allTextContents();
const connected = (page: Page) =>
  page.waitForSelector('#state[data-state="connected"]', { timeout: 20_000 });

describe.skipIf(!hasChromium)("demo chat in Chromium", () => {
  it("two tabs chat, see typing and presence, and survive a gateway restart without loss or duplicates", async () => {
    const room = `t${process.pid}${Date.now().toString(36)}`;
    const url = (user: string) => `http://127.0.0.1:${proxyPort}/demo?user=${user}&room=${room}`;
    const alice = await browser.context.newPage();
    const bob = await browser.context.newPage();
    const pageErrors: string[] = [];
    for (const p of [alice, bob]) p.on("pageerror", (e) => pageErrors.push(e.message));
    await alice.goto(url("alice"));
    await bob.goto(url("bob"));
    await Promise.all([connected(alice), connected(bob)]);

    // Presence: each tab lists the other as a member.
    await alice.waitForSelector('#members li[data-user="bob"]');
    await bob.waitForSelector('#members li[data-user="alice"]');

    // Typing: alice types, bob sees it.
    await alice.locator("#text").pressSequentially("hel");
    await bob.waitForFunction('document.getElementById("typing").textContent.includes("alice")');

    await alice.locator("#text").fill("hello from alice");
    await alice.locator("#text").press("Enter");
    await bob.locator("#text").fill("hello from bob");
    await bob.locator("#text").press("Enter");
    for (const p of [alice, bob]) {
      await p.waitForFunction('document.querySelectorAll("#messages .msg").length === 2');
    }
    expect((await texts(alice)).sort()).toEqual(["hello from alice", "hello from bob"]);
    expect((await texts(bob)).sort()).toEqual(["hello from alice", "hello from bob"]);
    await alice.screenshot({ path: join(browser.shots, "1-alice-before-restart.png") });
    await bob.screenshot({ path: join(browser.shots, "1-bob-before-restart.png") });

    // Restart the gateway; alice sends while it is down.
    await gateway.kill("SIGTERM");
    await alice.waitForSelector('#state:not([data-state="connected"])');
    await alice.locator("#text").fill("sent while the gateway was down");
    await alice.locator("#text").press("Enter");
    gateway = await startGateway();
    await Promise.all([connected(alice), connected(bob)]);
    await bob.locator("#text").fill("after the restart");
    await bob.locator("#text").press("Enter");

    const all = [
      "after the restart",
      "hello from alice",
      "hello from bob",
      "sent while the gateway was down",
    ];
    for (const p of [alice, bob]) {
      await p.waitForFunction(
        `document.querySelectorAll("#messages .msg").length >= ${all.length}`,
        undefined,
        { timeout: 20_000 },
      );
    }
    // Once each, in both tabs, in the order the gateway stored them.
    expect((await texts(alice)).sort()).toEqual(all);
    expect(await texts(bob)).toEqual(await texts(alice));
    await alice.screenshot({ path: join(browser.shots, "2-alice-after-restart.png") });
    await bob.screenshot({ path: join(browser.shots, "2-bob-after-restart.png") });
    expect(pageErrors).toEqual([]);
  });
});
