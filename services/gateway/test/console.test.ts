import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { at, expectDefined } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import { ConsoleAuth } from "../src/console/auth.js";
import { CONSOLE_SECRET, consoleLogin, consoleSession, withCookie } from "./console-client.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { heraldConnect, heraldUrl, request } from "./herald-client.js";

/** Cluster-scoped sessions never look an app up. */
const noApps = { byKey: () => undefined, byId: () => undefined, all: () => [] };
const OTHER_APP = { id: "other-app", key: "other-key", secret: "other-secret" };

describe("console API on one gateway (memory engine)", () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      env: {
        TIDINGS_CONSOLE_SECRET: CONSOLE_SECRET,
        TIDINGS_APPS: JSON.stringify([TEST_APP, OTHER_APP]),
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it("serves the page and refuses the API without a session", async () => {
    const page = await fetch(gw.http("/console"));
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    const html = await page.text();
    expect(html).toContain("/console/console.js");
    expect(html).not.toMatch(/https?:\/\//);
    expect((await fetch(gw.http("/console/console.js"))).status).toBe(200);
    expect((await fetch(gw.http("/console/api/cluster"))).status).toBe(401);
    expect((await fetch(gw.http("/console/api/cluster/stream"))).status).toBe(401);
  });

  it("refuses a wrong secret and sets an HttpOnly SameSite=Strict cookie for the right one", async () => {
    expect((await consoleLogin(gw.http, { secret: "wrong" })).status).toBe(401);
    expect((await consoleLogin(gw.http, { secret: CONSOLE_SECRET, app: TEST_APP.id })).status).toBe(
      401,
    );
    const res = await consoleLogin(gw.http, { secret: CONSOLE_SECRET, who: "ops" });
    expect(res.status).toBe(200);
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/console/);
    const body = await res.text();
    expect(body).not.toContain(CONSOLE_SECRET);
    expect(cookie).not.toContain(CONSOLE_SECRET);
    expect(JSON.parse(body)).toMatchObject({ scope: { kind: "cluster" }, who: "ops" });
    expect(cookie).not.toMatch(/Secure/);
    const behindTls = await fetch(gw.http("/console/api/login"), {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-proto": "https" },
      body: JSON.stringify({ secret: CONSOLE_SECRET }),
    });
    expect(behindTls.headers.get("set-cookie")).toMatch(/; Secure/);
  });

  it("needs the session's CSRF token and a same-origin Origin on every action", async () => {
    const s = await consoleSession(gw.http);
    const publish = { app: TEST_APP.id, channel: "csrf-room", name: "t", data: 1 };
    expect((await s.post("publish", publish, { csrf: null })).status).toBe(403);
    expect((await s.post("publish", publish, { csrf: "x".repeat(43) })).status).toBe(403);
    const other = await consoleSession(gw.http);
    expect((await s.post("publish", publish, { csrf: other.csrf })).status).toBe(403);
    expect((await s.post("publish", publish, { origin: "http://evil.test" })).status).toBe(403);
    expect((await gw.engine.history(TEST_APP.id, "csrf-room", { limit: 10 })).events).toHaveLength(
      0,
    );
    expect((await s.post("publish", publish)).status).toBe(200);
    expect((await gw.engine.history(TEST_APP.id, "csrf-room", { limit: 10 })).events).toHaveLength(
      1,
    );
  });

  it("scopes an app-secret login to that app", async () => {
    const s = await consoleSession(gw.http, { secret: OTHER_APP.secret, app: OTHER_APP.id });
    const session = (await (await s.get("session")).json()) as { apps: string[] };
    expect(session.apps).toEqual([OTHER_APP.id]);
    const snapshot = (await (await s.get("cluster")).json()) as { apps: { appId: string }[] };
    expect(snapshot.apps.map((a) => a.appId)).toEqual([OTHER_APP.id]);
    expect((await s.get(`channel?app=${TEST_APP.id}&channel=x`)).status).toBe(403);
    expect((await s.get(`tail?app=${TEST_APP.id}&channel=x`)).status).toBe(403);
    const denied = await s.post("publish", { app: TEST_APP.id, channel: "x", name: "t", data: 1 });
    expect(denied.status).toBe(403);
    expect(
      (await s.post("publish", { app: OTHER_APP.id, channel: "x", name: "t", data: 1 })).status,
    ).toBe(200);
    const actions = (await (await s.get("actions")).json()) as { actions: { appId: string }[] };
    expect(actions.actions.every((a) => a.appId === OTHER_APP.id)).toBe(true);
  });

  it("refuses an expired session and a logged-out one", async () => {
    // A session sealed with the gateway's own key, issued two hours ago.
    const past = new ConsoleAuth(CONSOLE_SECRET, noApps, 3600_000, () => Date.now() - 7200_000);
    const old = expectDefined(past.login(CONSOLE_SECRET, undefined, "ops"), "a session");
    const expired = withCookie(gw.http, `tidings_console=${past.seal(old)}`, past.csrfOf(old));
    expect((await expired.get("session")).status).toBe(401);
    expect(
      (await expired.post("publish", { app: TEST_APP.id, channel: "x", name: "t", data: 1 }))
        .status,
    ).toBe(401);

    const s = await consoleSession(gw.http);
    expect((await s.get("session")).status).toBe(200);
    expect((await s.post("logout", {})).status).toBe(200);
    expect((await s.get("session")).status).toBe(401);
  });

  it("publishes, tails and replays a channel, and logs who acted", async () => {
    const s = await consoleSession(gw.http, { secret: CONSOLE_SECRET, who: "carol" });
    const tail = await fetch(gw.http(`/console/api/tail?app=${TEST_APP.id}&channel=tail-room`), {
      headers: { cookie: s.cookie },
    });
    expect(tail.headers.get("content-type")).toBe("text/event-stream");
    const reader = expectDefined(tail.body, "the tail's body").getReader();
    let text = "";
    const until = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${needle}`);
        text += new TextDecoder().decode(value);
      }
    };
    await until("event: ready");
    expect(
      (
        await s.post("publish", {
          app: TEST_APP.id,
          channel: "tail-room",
          name: "first",
          data: { n: 1 },
        })
      ).status,
    ).toBe(200);
    await until('"name":"first"');
    await s.post("publish", {
      app: TEST_APP.id,
      channel: "tail-room",
      name: "second",
      data: { n: 2 },
    });
    await until('"name":"second"');
    await reader.cancel();

    const channel = (await (
      await s.get(`channel?app=${TEST_APP.id}&channel=tail-room`)
    ).json()) as {
      events: { seq: number; name: string; via?: string }[];
      rate: number[];
    };
    expect(channel.events.map((e) => e.name)).toEqual(["first", "second"]);
    // Each event says how it came in; these two were published from the console.
    expect(channel.events.map((e) => e.via)).toEqual(["console", "console"]);
    expect(channel.rate.reduce((a, b) => a + b, 0)).toBe(2);
    const firstSeq = at(channel.events, 0).seq;
    const replay = (await (
      await s.get(`history?app=${TEST_APP.id}&channel=tail-room&after_seq=${firstSeq}`)
    ).json()) as { events: { name: string }[] };
    expect(replay.events.map((e) => e.name)).toEqual(["second"]);

    const bad = await s.post("publish", {
      app: TEST_APP.id,
      channel: "tail-room",
      name: "pusher:x",
      data: 1,
    });
    expect(bad.status).toBe(403);
    const actions = (await (await s.get("actions")).json()) as {
      actions: { who: string; action: string; name?: string; ok: boolean }[];
    };
    expect(actions.actions.slice(0, 3)).toMatchObject([
      { who: "carol", action: "publish", name: "pusher:x", ok: false },
      { who: "carol", action: "publish", name: "second", ok: true },
      { who: "carol", action: "publish", name: "first", ok: true },
    ]);
  });

  it("shows this one process in the cluster view", async () => {
    const s = await consoleSession(gw.http);
    const snap = (await (await s.get("cluster")).json()) as {
      engine: string;
      processes: { kind: string; state: string }[];
    };
    expect(snap.engine).toBe("memory");
    expect(snap.processes).toMatchObject([{ kind: "gateway", state: "up" }]);
  });

  it("shows each app's frame and event rates", async () => {
    const s = await consoleSession(gw.http);
    type AppRow = {
      appId: string;
      msgsInPerSec: number;
      msgsOutPerSec: number;
      eventsPerSec: number;
    };
    const rows = async () => {
      const snap = (await (await s.get("cluster")).json()) as { apps: AppRow[] };
      const row = (appId: string) =>
        expectDefined(
          snap.apps.find((a) => a.appId === appId),
          appId,
        );
      return [row(TEST_APP.id), row(OTHER_APP.id)] as const;
    };
    const ch = "rates-room";
    const c = await heraldConnect(heraldUrl(gw.url, "rates-user", [ch]));
    await request(c, "subscribe", { stream_id: ch });
    // Publishing for a while: the figures are per-second rates over the last stats interval.
    let publishing = true;
    const pump = (async () => {
      while (publishing) {
        await request(c, "event.publish", { stream_id: ch, type: "t", body: 1 });
        // About 20 a second: well inside the connection's message rate.
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await waitFor(
        async () => {
          // In the same snapshot the other app, quiet now, shows none of it.
          const [r, other] = await rows();
          return (
            r.eventsPerSec > 0 &&
            r.msgsInPerSec > 0 &&
            r.msgsOutPerSec > 0 &&
            other.eventsPerSec === 0 &&
            other.msgsInPerSec === 0
          );
        },
        { what: "the app's rates", timeoutMs: 15_000 },
      );
    } finally {
      publishing = false;
      await pump;
      c.ws.close();
    }
  });
});

describe("console switched off", () => {
  it("has no /console routes without TIDINGS_CONSOLE_SECRET", async () => {
    await using gw = await startTestGateway();
    expect((await fetch(gw.http("/console"))).status).toBe(404);
    expect((await consoleLogin(gw.http, { secret: "anything" })).status).toBe(404);
  });

  it("refuses a console secret shorter than 16 characters at start", async () => {
    await expect(startTestGateway({ env: { TIDINGS_CONSOLE_SECRET: "short" } })).rejects.toThrow(
      /TIDINGS_CONSOLE_SECRET must be at least 16 characters/,
    );
  });
});
