/**
 * The console in a real browser: Debian's Chromium driven by
 * playwright-core, against two gateway processes and a presence replica on
 * NATS. Screenshots go to a temp folder (printed), never into the repo.
 */
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasChromium, launchChromium, type TestBrowser } from "../../../shared/test/browser.js";
import { expectDefined } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import { ConsoleAuth } from "../src/console/auth.js";
import { CONSOLE_SECRET } from "./console-client.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { startTwoGateways, type TwoGateways } from "./processes.js";
import {
  connected,
  nextEvent,
  type Pusher,
  pusherClient,
  pusherServer,
  subscribe,
} from "./pusher-client.js";
import type { TestClient } from "./ws-client.js";

const noApps = { byKey: () => undefined, byId: () => undefined, all: () => [] };

describe.skipIf(!hasChromium)("console in Chromium", () => {
  let cluster: TwoGateways;
  let browser: TestBrowser;
  let page: Page;
  let pusher: Pusher | undefined;
  let herald: TestClient | undefined;
  /** Every text the browser received after logging in, to look for the secret. */
  const received: string[] = [];
  let shot = 0;
  const snap = (name: string) =>
    page.screenshot({
      path: join(browser.shots, `${String(++shot).padStart(2, "0")}-${name}.png`),
      fullPage: true,
    });

  beforeAll(async () => {
    cluster = await startTwoGateways({ TIDINGS_CONSOLE_SECRET: CONSOLE_SECRET });
    browser = await launchChromium("console", { viewport: { width: 1280, height: 900 } });
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on("response", (res) => {
      const type = res.headers()["content-type"] ?? "";
      if (type.includes("event-stream")) return; // read through the page, below
      res.text().then(
        (t) => received.push(t),
        () => {},
      );
    });
  }, 90_000);

  afterAll(async () => {
    pusher?.disconnect();
    herald?.ws.close();
    await browser?.close();
    await cluster?.stop();
  });

  it("refuses a wrong secret", async () => {
    await page.goto(cluster.g1.http("/console"));
    await page.waitForSelector("#login:not([hidden])");
    await page.fill("#login-secret", "not-the-secret");
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector('#login-error:text-is("wrong secret")');
    expect(await page.isHidden("#app")).toBe(true);
    await snap("wrong-secret");
  });

  it("logs in, sees two gateways, inspects, tails, publishes and terminates", async () => {
    await page.fill("#login-secret", CONSOLE_SECRET);
    await page.fill("#login-who", "browser-ops");
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#app:not([hidden])");
    expect(await page.isHidden("#login")).toBe(true);
    // The session cookie is HttpOnly: the page's script cannot read it.
    expect(await page.evaluate("document.cookie")).toBe("");
    const up = (kind: string) =>
      page.locator(`.proc[data-kind="${kind}"][data-state="up"]`).count();
    await waitFor(async () => (await up("gateway")) === 2 && (await up("presence")) === 1, {
      what: "two gateways and a presence replica up in the page",
      intervalMs: 100,
      timeoutMs: 15_000,
    });
    await snap("cluster");

    const room = `browser-room-${Date.now()}`;
    herald = await heraldConnect(heraldUrl(cluster.g2.url, "hanna", [room]));
    expect((await request(herald, "subscribe", { stream_id: room })).type).toBe("subscribed");
    pusher = pusherClient(cluster.g1);
    await connected(pusher);
    const { channel } = await subscribe(pusher, room);
    const total = () => page.getAttribute("#total-connections", "data-value");
    await waitFor(async () => (await total()) === "2", {
      what: "2 connections shown",
      intervalMs: 100,
    });

    await page.click('button[data-tab="channels"]');
    await page.fill("#channel-prefix", "browser-room-");
    await page.click("#channel-search button[type=submit]");
    await page.click(`#channel-list tr[data-channel="${room}"]`);
    await page.waitForSelector('#inspector-dialects [data-dialect="herald"]');
    expect(await page.textContent('#inspector-dialects [data-dialect="herald"]')).toBe("herald 1");
    expect(await page.textContent('#inspector-dialects [data-dialect="pusher"]')).toBe("pusher 1");
    await page.waitForSelector('#tail-state[data-live="true"]');

    // An event published elsewhere (the HTTP API on the other gateway) moves the tail.
    await pusherServer(cluster.g2).trigger(room, "from-backend", { n: 1 });
    await page.waitForSelector('#tail-count[data-count="1"]');
    expect(await page.textContent("#tail")).toContain("from-backend");

    // Published from the console, it reaches both clients.
    const atPusher = nextEvent(channel, "from-console");
    await page.fill("#publish-name", "from-console");
    await page.fill("#publish-data", '{"said":"hello both"}');
    await page.click("#publish-form button[type=submit]");
    expect((await atPusher).data).toEqual({ said: "hello both" });
    const atHerald = await herald.next<Frame>(
      isType("event.new", (p) => p.type === "from-console"),
    );
    expect(atHerald.payload.body).toEqual({ said: "hello both" });
    await page.waitForSelector('#tail-count[data-count="2"]');
    await snap("channel");

    await page.click('#inspector-connections tr:has-text("hanna") button');
    await waitFor(() => herald?.closed !== undefined, { what: "hanna's connection closed" });
    await page.click('button[data-tab="cluster"]');
    await waitFor(async () => (await total()) === "1", {
      what: "1 connection shown",
      intervalMs: 100,
    });
    await snap("after-terminate");

    await page.click('button[data-tab="actions"]');
    await page.waitForSelector('#action-log tr:has-text("terminate")');
    expect(await page.textContent("#action-log")).toContain("browser-ops");

    // A phone-sized screen gets the same console, laid out in one column.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('button[data-tab="cluster"]');
    const width = await page.evaluate("document.documentElement.scrollWidth");
    expect(width as number).toBeLessThanOrEqual(390);
    await snap("phone");

    expect(received.length).toBeGreaterThan(3);
    for (const text of received) expect(text).not.toContain(CONSOLE_SECRET);
  });

  it("refuses an expired session", async () => {
    await browser.context.clearCookies();
    const past = new ConsoleAuth(CONSOLE_SECRET, noApps, 3600_000, () => Date.now() - 7200_000);
    const old = expectDefined(past.login(CONSOLE_SECRET, undefined, "ops"), "a session");
    await browser.context.addCookies([
      {
        name: "tidings_console",
        value: past.seal(old),
        domain: "127.0.0.1",
        path: "/console",
        httpOnly: true,
        sameSite: "Strict",
      },
    ]);
    await page.goto(cluster.g1.http("/console"));
    await page.waitForSelector("#login:not([hidden])");
    expect(await page.isHidden("#app")).toBe(true);
    const status = await page.evaluate('fetch("/console/api/session").then((r) => r.status)');
    expect(status).toBe(401);
    await snap("expired");
  });
});
