import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withConfigTable } from "./docs.js";
import { ConfigError, loadConfig } from "./load.js";

describe("config", () => {
  it("uses defaults and the development app when nothing is set", () => {
    const c = loadConfig({});
    expect(c.port).toBe(6001);
    expect(c.devApp).toBe(true);
    expect(c.apps[0]).toMatchObject({ id: "app-id", key: "app-key", secret: "app-secret" });
    expect(c.warnings.join()).toMatch(/development app/);
    expect(c.natsUrl).toBeUndefined();
    expect(Object.isFrozen(c.apps[0]?.limits)).toBe(true);
  });

  it("reports every problem at once, naming the variable", () => {
    let err: unknown;
    try {
      loadConfig({
        PORT: "abc",
        LOG_LEVEL: "loud",
        TIDINGS_APPS: "[{}]",
        TIDINGS_MAX_SUBSCRIPTIONS: "0",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    expect(problems).toMatch(/PORT: must be an integer/);
    expect(problems).toMatch(/LOG_LEVEL: must be one of/);
    expect(problems).toMatch(/TIDINGS_APPS\[0\]\.id/);
    expect(problems).toMatch(/TIDINGS_APPS\[0\]\.secret/);
    expect(problems).toMatch(/TIDINGS_MAX_SUBSCRIPTIONS: must be at least 1/);
  });

  it("reports a role that needs NATS together with the other problems", () => {
    let err: unknown;
    try {
      loadConfig({ TIDINGS_ROLE: "gateway", PORT: "abc" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      'PORT: must be an integer (got "abc")',
      "TIDINGS_ROLE=gateway needs NATS_URL (separate processes share state through NATS)",
    ]);
    expect(loadConfig({ TIDINGS_ROLE: "presence", NATS_URL: "nats://a:4222" }).role).toBe(
      "presence",
    );
  });

  it("parses apps with per-app limits over the defaults, and NATS server lists", () => {
    const c = loadConfig({
      TIDINGS_APPS: JSON.stringify([
        { id: "a", key: "k", secret: "s", apiKeys: ["x"], limits: { maxSubscriptions: 7 } },
      ]),
      TIDINGS_MAX_MESSAGE_RATE: "50",
      NATS_URL: "nats://a:4222, nats://b:4222",
    });
    expect(c.apps[0]?.limits).toMatchObject({ maxSubscriptions: 7, maxMessageRate: 50 });
    expect(c.apps[0]?.apiKeys).toEqual(["x"]);
    expect(c.natsUrl).toEqual(["nats://a:4222", "nats://b:4222"]);
  });

  it("rejects duplicate keys and unknown limits, and warns about unknown TIDINGS_ variables", () => {
    expect(() =>
      loadConfig({
        TIDINGS_APPS: JSON.stringify([
          { id: "a", key: "k", secret: "s" },
          { id: "b", key: "k", secret: "s", limits: { nope: 1 } },
        ]),
      }),
    ).toThrow(/duplicate key k[\s\S]*limits\.nope: unknown limit/);
    expect(loadConfig({ TIDINGS_TYPO: "1" }).warnings.join()).toMatch(/TIDINGS_TYPO/);
  });

  it("parses webhooks and names each bad field", () => {
    const hook = { url: "http://127.0.0.1:9/h", event_types: ["client_event"] };
    const c = loadConfig({
      TIDINGS_APPS: JSON.stringify([{ id: "a", key: "k", secret: "s", webhooks: [hook] }]),
    });
    expect(c.apps[0]?.webhooks).toEqual([{ url: hook.url, eventTypes: ["client_event"] }]);
    expect(c.apps[0]?.limits.webhookQueueLimit).toBe(10000);
    const bad = [{ url: "ftp://x" }, { url: "http://x", event_types: ["nope"] }];
    expect(() =>
      loadConfig({
        TIDINGS_APPS: JSON.stringify([{ id: "a", key: "k", secret: "s", webhooks: bad }]),
      }),
    ).toThrow(/webhooks\[0\]\.url: must be an http[\s\S]*webhooks\[1\]\.event_types/);
  });

  it("reads an optional JSON file; env wins", () => {
    const path = join(tmpdir(), `tidings-${process.pid}.json`);
    writeFileSync(path, JSON.stringify({ PORT: 7000, HOST: "127.0.0.1" }));
    const c = loadConfig({ TIDINGS_CONFIG_FILE: path, PORT: "7001" });
    expect(c.port).toBe(7001);
    expect(c.host).toBe("127.0.0.1");
    writeFileSync(path, JSON.stringify({ NOPE: 1 }));
    expect(() => loadConfig({ TIDINGS_CONFIG_FILE: path })).toThrow(/unknown key NOPE/);
  });

  it("matches the README's configuration table", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    expect(withConfigTable(readme)).toBe(readme);
  });
});
