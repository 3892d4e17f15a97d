import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withConfigTable } from "./docs.js";
import { ConfigError, loadConfig } from "./load.js";

/** The problems loadConfig reports for this env (it must throw). */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error("config was accepted");
}

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
    ).toThrow(/duplicate key k[\s\S]*limits\.nope: unknown field/);
    expect(loadConfig({ TIDINGS_TYPO: "1" }).warnings.join()).toMatch(/TIDINGS_TYPO/);
    expect(loadConfig({ TIDINGS_MAX_SUBSCRIPTION: "1" }).warnings).toContain(
      "unknown variable TIDINGS_MAX_SUBSCRIPTION ignored (did you mean TIDINGS_MAX_SUBSCRIPTIONS?)",
    );
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

  it("range-checks ports and bounded numbers instead of wrapping them", () => {
    const problems = problemsOf({
      PORT: "70000",
      NATS_REPLICAS: "7",
      TIDINGS_ACTIVITY_TIMEOUT: "99999999",
      TIDINGS_MAX_CONNECTIONS: "99999999999999999999",
    });
    expect(problems).toEqual([
      'PORT: must be at most 65535 (got "70000")',
      'NATS_REPLICAS: must be at most 5 (got "7")',
      'TIDINGS_MAX_CONNECTIONS: must be an integer (got "99999999999999999999")',
      'TIDINGS_ACTIVITY_TIMEOUT: must be at most 2147483 (got "99999999")',
    ]);
    expect(problemsOf({ PORT: "-1" })).toEqual(['PORT: must be at least 0 (got "-1")']);
    expect(loadConfig({ PORT: "65535" }).port).toBe(65535);
  });

  it("refuses a heartbeat that is not shorter than the gateway timeout", () => {
    expect(
      problemsOf({ TIDINGS_HEARTBEAT_MS: "5000", TIDINGS_GATEWAY_TIMEOUT_MS: "5000" }),
    ).toEqual([
      "TIDINGS_HEARTBEAT_MS (5000) must be less than TIDINGS_GATEWAY_TIMEOUT_MS (5000), or live gateways are declared dead",
    ]);
  });

  it("reports where TIDINGS_APPS is not JSON without quoting any of it", () => {
    const secret = "hunter2-very-secret";
    for (const text of [`${secret}`, `[{"id":"a","key":"k","secret":"${secret}" x}]`]) {
      const problems = problemsOf({ TIDINGS_APPS: text });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^TIDINGS_APPS: is not valid JSON/);
      expect(problems[0]).not.toContain("hunter2");
    }
    expect(problemsOf({ TIDINGS_APPS: '[{"secret":"s" x}]' })[0]).toBe(
      "TIDINGS_APPS: is not valid JSON (parse error at character 15) (got <hidden>)",
    );
  });

  it("does not quote a config file that is not JSON", () => {
    const path = join(tmpdir(), `tidings-bad-${process.pid}.json`);
    writeFileSync(path, '{"TIDINGS_APPS": [{"secret": "hunter2-very-secret"}] x');
    const problems = problemsOf({ TIDINGS_CONFIG_FILE: path });
    expect(problems).toEqual([
      `TIDINGS_CONFIG_FILE: ${path} is not valid JSON (parse error at character 53)`,
    ]);
  });

  it("reads an optional JSON file; env wins", () => {
    const path = join(tmpdir(), `tidings-${process.pid}.json`);
    writeFileSync(path, JSON.stringify({ PORT: 7000, HOST: "127.0.0.1" }));
    const c = loadConfig({ TIDINGS_CONFIG_FILE: path, PORT: "7001" });
    expect(c.port).toBe(7001);
    expect(c.host).toBe("127.0.0.1");
    writeFileSync(path, JSON.stringify({ NOPE: 1 }));
    expect(() => loadConfig({ TIDINGS_CONFIG_FILE: path })).toThrow(/unknown key NOPE/);
    writeFileSync(path, JSON.stringify({ NAT_URL: "nats://a:4222" }));
    expect(() => loadConfig({ TIDINGS_CONFIG_FILE: path })).toThrow(
      "unknown key NAT_URL (did you mean NATS_URL?)",
    );
  });

  it("matches the README's configuration table", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    expect(withConfigTable(readme)).toBe(readme);
  });
});
