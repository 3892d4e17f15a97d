import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { EngineUnavailableError } from "./engine/engine.js";
import { createLogger } from "./log.js";
import { PresenceUnavailableError } from "./presence/api.js";

/** A logger whose lines are collected, parsed. */
function collecting() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createLogger("info", "test", sink), lines };
}

describe("error logging", () => {
  it("logs expected conditions by name and message, without a stack", () => {
    const { log, lines } = collecting();
    log.warn({ err: new EngineUnavailableError("no JetStream ack") }, "publish failed");
    log.warn({ err: new PresenceUnavailableError("no owner answered") }, "report failed");
    const timeout = new Error("timeout");
    timeout.name = "TimeoutError";
    log.warn({ err: timeout }, "request timed out");
    expect(lines.map((l) => l.err)).toEqual([
      { type: "EngineUnavailableError", message: "no JetStream ack" },
      { type: "PresenceUnavailableError", message: "no owner answered" },
      { type: "TimeoutError", message: "timeout" },
    ]);
  });

  it("keeps the stack of anything else (a bug)", () => {
    const { log, lines } = collecting();
    log.error({ err: new TypeError("x is undefined") }, "handler failed");
    const err = lines[0]?.err as { type?: string; message?: string; stack?: string } | undefined;
    expect(err).toMatchObject({ type: "TypeError", message: "x is undefined" });
    expect(err?.stack).toContain("log.test.ts");
  });
});
