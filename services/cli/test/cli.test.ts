import { describe, expect, it } from "vitest";
import { at } from "../../../shared/test/defined.js";
import { runCli } from "./run-cli.js";

const APPS = [
  {
    id: "a1",
    key: "k1",
    secret: "top-secret-1",
    apiKeys: ["api-secret-1"],
    webhooks: [{ url: "https://hook:pw-secret@h.test/x?token=tok-secret" }],
  },
  { id: "a2", key: "k2", secret: "top-secret-2" },
];

describe("tidings --help", () => {
  it("lists every command, role and dialect, and starts nothing", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const word of ["start", "token", "config", "help", "all", "gateway", "presence"])
      expect(r.stdout).toMatch(new RegExp(`\\b${word}\\b`));
    for (const dialect of ["herald", "broadcaster", "chat", "foony", "pusher"])
      expect(r.stdout).toContain(dialect);
    expect(r.stdout + r.stderr).not.toMatch(/listening/);
  });

  it("answers --help through the entry npm start runs, instead of starting a server", async () => {
    const r = await runCli(["--help"], {}, "services/main.ts", ["--import", "tsx"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: tidings/);
    expect(r.stdout + r.stderr).not.toMatch(/listening/);
  });

  it("prints each command's help", async () => {
    const [token, config, start] = await Promise.all([
      runCli(["token", "--help"]),
      runCli(["help", "config"]),
      runCli(["start", "--help"]),
    ]);
    expect(token.stdout).toMatch(/^Usage: tidings token DIALECT/);
    expect(token.stdout).toContain("--socket-id");
    expect(config.stdout).toMatch(/^Usage: tidings config/);
    expect(start.stdout).toMatch(/^Usage: tidings start \[all\|gateway\|presence\]/);
  });

  it("refuses unknown commands, options and roles with status 2", async () => {
    const results = await Promise.all([
      runCli(["serve"]),
      runCli(["--port", "1"]),
      runCli(["start", "edge"]),
      runCli(["token", "herald", "--usr", "u1"]),
    ]);
    expect(results.map((r) => r.code)).toEqual([2, 2, 2, 2]);
    expect(at(results, 0).stderr).toMatch(/unknown command serve[\s\S]*tidings --help/);
    expect(at(results, 1).stderr).toMatch(/unknown option --port/);
    expect(at(results, 2).stderr).toMatch(/unknown role edge; one of all, gateway, presence/);
    expect(at(results, 3).stderr).toMatch(/--usr/);
  });
});

describe("tidings config", () => {
  it("prints the effective config with every secret masked", async () => {
    const r = await runCli(["config"], {
      TIDINGS_APPS: JSON.stringify(APPS),
      NATS_URL: "nats://n1:4222",
      NATS_PASS: "nats-pass-secret",
      TIDINGS_MAX_SUBSCRIPTIONS: "42",
    });
    expect(r.code).toBe(0);
    for (const secret of [
      "top-secret",
      "api-secret",
      "pw-secret",
      "tok-secret",
      "nats-pass-secret",
    ])
      expect(r.stdout).not.toContain(secret);
    const c = JSON.parse(r.stdout) as Record<string, unknown> & {
      apps: {
        id: string;
        secret: string;
        apiKeys: string[];
        webhooks: { url: string }[];
        limits: Record<string, number>;
      }[];
    };
    expect(c.natsPass).toBe("***");
    expect(c.natsToken).toBeNull();
    expect(c.natsUrl).toEqual(["nats://n1:4222"]);
    expect(c.apps.map((a) => [a.id, a.secret])).toEqual([
      ["a1", "***"],
      ["a2", "***"],
    ]);
    expect(at(c.apps, 0).apiKeys).toEqual(["***"]);
    expect(at(at(c.apps, 0).webhooks, 0).url).toBe("https://hook:***@h.test/x?token=***");
    expect(at(c.apps, 1).limits.maxSubscriptions).toBe(42);
  });

  it("reports a config start would refuse, with status 2", async () => {
    const r = await runCli(["config"], {
      TIDINGS_APPS: JSON.stringify([{ ...APPS[1], webhook: [] }]),
      PORT: "70000",
    });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/PORT: must be at most 65535/);
    expect(r.stderr).toMatch(
      /TIDINGS_APPS\[0\]\.webhook: unknown field \(did you mean webhooks\?\)/,
    );
    expect(r.stderr).not.toContain("top-secret");
  });
});

describe("tidings token usage", () => {
  it("needs --app when there are several apps, and a user for user tokens", async () => {
    const env = { TIDINGS_APPS: JSON.stringify(APPS) };
    const [noApp, noUser, compactPrefix, badExpiry] = await Promise.all([
      runCli(["token", "chat", "--user", "u1"], env),
      runCli(["token", "chat", "--app", "a2"], env),
      runCli(["token", "herald", "--app", "a2", "--user", "u1", "--channels", "room-*"], env),
      runCli(["token", "chat", "--app", "k2", "--user", "u1", "--expires", "soon"], env),
    ]);
    expect(noApp.stderr).toMatch(/there are 2 apps: name one with --app ID/);
    expect(noUser.stderr).toMatch(/chat tokens need --user/);
    expect(compactPrefix.stderr).toMatch(/use --jwt for prefixes/);
    expect(badExpiry.stderr).toMatch(/--expires: "soon" is not a duration/);
    expect([noApp, noUser, compactPrefix, badExpiry].map((r) => r.code)).toEqual([2, 2, 2, 2]);
  });
});
