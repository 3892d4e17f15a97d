import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load.js";

const base = { id: "a", key: "k", secret: "s3cr3t-value" };

/** The problems loadConfig reports for these apps (it must throw). */
function problemsFor(apps: unknown[]): string[] {
  try {
    loadConfig({ TIDINGS_APPS: JSON.stringify(apps) });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error("config was accepted");
}

describe("app objects fail closed", () => {
  it("rejects unknown fields with their path and the likely intended name", () => {
    const problems = problemsFor([
      { ...base, allowedOrigin: ["https://a.test"] },
      { ...base, id: "b", key: "k2", webhook: [], apikeys: ["x"], colour: "red" },
    ]);
    expect(problems).toContainEqual(
      expect.stringMatching(
        /^TIDINGS_APPS\[0\]\.allowedOrigin: unknown field \(did you mean allowedOrigins\?\)/,
      ),
    );
    expect(problems).toContainEqual(
      expect.stringMatching(
        /^TIDINGS_APPS\[1\]\.webhook: unknown field \(did you mean webhooks\?\)/,
      ),
    );
    expect(problems).toContainEqual(
      expect.stringMatching(
        /^TIDINGS_APPS\[1\]\.apikeys: unknown field \(did you mean apiKeys\?\)/,
      ),
    );
    // Nothing close: no guess, but the known names are listed.
    expect(problems).toContainEqual(
      expect.stringMatching(/^TIDINGS_APPS\[1\]\.colour: unknown field; known: id, key, secret/),
    );
  });

  it("rejects unknown fields in a webhook and in limits, with a suggestion", () => {
    const problems = problemsFor([
      {
        ...base,
        webhooks: [{ url: "https://h.test/x", eventTypes: ["client_event"] }],
        limits: { maxSubscription: 5 },
      },
    ]);
    expect(problems).toContainEqual(
      expect.stringMatching(
        /^TIDINGS_APPS\[0\]\.webhooks\[0\]\.eventTypes: unknown field \(did you mean event_types\?\)/,
      ),
    );
    expect(problems).toContainEqual(
      expect.stringMatching(
        /^TIDINGS_APPS\[0\]\.limits\.maxSubscription: unknown field \(did you mean maxSubscriptions\?\)/,
      ),
    );
  });

  it("checks per-app limits against the same bounds as their variables", () => {
    const problems = problemsFor([
      { ...base, limits: { maxSubscriptions: 0, maxFrameBytes: 10, maxConnections: 1.5 } },
    ]);
    expect(problems).toEqual(
      expect.arrayContaining([
        "TIDINGS_APPS[0].limits.maxSubscriptions: must be at least 1",
        "TIDINGS_APPS[0].limits.maxFrameBytes: must be at least 256",
        "TIDINGS_APPS[0].limits.maxConnections: must be an integer",
      ]),
    );
  });

  it("takes streamPartitions from 1 to 64, 1 when absent", () => {
    const apps = loadConfig({
      TIDINGS_APPS: JSON.stringify([base, { ...base, id: "b", key: "k2", streamPartitions: 4 }]),
    }).apps;
    expect(apps.map((a) => a.streamPartitions)).toEqual([1, 4]);
    const problems = problemsFor([
      { ...base, streamPartitions: 0 },
      { ...base, id: "b", key: "k2", streamPartitions: 65 },
      { ...base, id: "c", key: "k3", streamPartitions: "4" },
    ]);
    expect(problems).toEqual([
      "TIDINGS_APPS[0].streamPartitions: must be at least 1",
      "TIDINGS_APPS[1].streamPartitions: must be at most 64",
      "TIDINGS_APPS[2].streamPartitions: must be an integer",
    ]);
  });

  it("refuses empty API keys (they would match an empty secret) and empty origins", () => {
    const problems = problemsFor([{ ...base, apiKeys: [""], allowedOrigins: [""] }]);
    expect(problems).toEqual([
      "TIDINGS_APPS[0].apiKeys: must be an array of non-empty strings",
      "TIDINGS_APPS[0].allowedOrigins: must be an array of non-empty strings",
    ]);
  });

  it("never quotes a secret in its messages", () => {
    const problems = problemsFor([{ ...base, secrt: "x", limits: { nope: 1 } }, { ...base }]);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join("\n")).not.toContain(base.secret);
  });
});
