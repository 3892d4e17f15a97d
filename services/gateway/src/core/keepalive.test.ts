import { describe, expect, it } from "vitest";
import type { Connection } from "./connection.js";
import { checkSilence, type KeepalivePolicy } from "./keepalive.js";

/** The fields the sweep reads, on a stand-in for a connection. */
function fakeConn(policy: KeepalivePolicy, lastSeenAt: number) {
  return {
    keepalive: policy,
    probedAt: undefined as number | undefined,
    lastSeenAt,
    closed: false,
    ending: false,
  } as unknown as Connection;
}

describe("checkSilence", () => {
  it("probes after idleMs of silence, times out pongMs later without a frame", () => {
    const calls: string[] = [];
    const policy: KeepalivePolicy = {
      idleMs: 5000,
      idle: () => calls.push("ping"),
      probe: { pongMs: 1000, timedOut: () => calls.push("timeout") },
    };
    const conn = fakeConn(policy, 0);
    checkSilence(conn, 4999);
    expect(calls).toEqual([]);
    checkSilence(conn, 5000);
    checkSilence(conn, 5999);
    expect(calls).toEqual(["ping"]);
    checkSilence(conn, 6000);
    expect(calls).toEqual(["ping", "timeout"]);
  });

  it("takes any frame after the probe as its answer and waits idleMs again", () => {
    const calls: string[] = [];
    const policy: KeepalivePolicy = {
      idleMs: 5000,
      idle: () => calls.push("ping"),
      probe: { pongMs: 1000, timedOut: () => calls.push("timeout") },
    };
    const conn = fakeConn(policy, 0);
    checkSilence(conn, 5000);
    conn.lastSeenAt = 5500;
    checkSilence(conn, 6500);
    expect(calls).toEqual(["ping"]);
    expect(conn.probedAt).toBeUndefined();
    checkSilence(conn, 10_500);
    expect(calls).toEqual(["ping", "ping"]);
  });

  it("runs a final idle once the connection is silent, and skips ending ones", () => {
    let closes = 0;
    const conn = fakeConn({ idleMs: 10_000, idle: () => closes++ }, 0);
    checkSilence(conn, 9999);
    checkSilence(conn, 10_000);
    expect(closes).toBe(1);
    (conn as { ending: boolean }).ending = true;
    checkSilence(conn, 11_000);
    expect(closes).toBe(1);
  });
});
