import { describe, expect, it } from "vitest";
import { at } from "../../../../shared/test/defined.js";
import { AppQuota, Connection, nextConnectionId } from "./connection.js";

describe("connection ids", () => {
  const ids = Array.from({ length: 20_000 }, nextConnectionId);
  const parts = ids.map((id) => id.split(".").map(Number) as [number, number]);

  // pusher-js and the `pusher` server SDKs refuse a socket_id not of this form;
  // our HTTP API takes at most 12 digits a side.
  it("have Pusher's socket id form", () => {
    const form = /^[1-9][0-9]{0,11}\.[1-9][0-9]{0,11}$/;
    expect(ids.filter((id) => !form.test(id))).toEqual([]);
    expect(parts.flat().every(Number.isSafeInteger)).toBe(true);
  });

  it("are distinct and share no prefix or counter one could guess from", () => {
    expect(new Set(ids).size).toBe(ids.length);
    // A per-process prefix would repeat; random halves almost never do.
    expect(new Set(parts.map(([a]) => a)).size).toBeGreaterThan(ids.length - 5);
    expect(new Set(parts.map(([, b]) => b)).size).toBeGreaterThan(ids.length - 5);
    // Neither half steps by one from the previous id.
    let steps = 0;
    for (let i = 1; i < parts.length; i++) {
      const [a0, b0] = at(parts, i - 1);
      const [a1, b1] = at(parts, i);
      if (a1 - a0 === 1 || b1 - b0 === 1) steps++;
    }
    expect(steps).toBe(0);
  });

  // Both halves spread over their range: about 80 bits, not a small space.
  it("use the whole range of each half", () => {
    for (const half of [0, 1] as const) {
      const values = parts.map((p) => p[half]);
      expect(Math.max(...values)).toBeGreaterThan(9e11);
      expect(Math.min(...values)).toBeLessThan(1e11);
    }
  });
});

describe("a connection's channels", () => {
  it("hold one channel inline and more in a Set, with the same answers", () => {
    const conn = new Connection(
      {} as never,
      "pusher",
      {} as never,
      {} as never,
      new AppQuota(),
      () => {},
    );
    expect([conn.channelCount, conn.hasChannel("a"), [...conn.channels]]).toEqual([0, false, []]);
    conn.addChannel("a");
    conn.addChannel("a");
    expect([conn.channelCount, conn.hasChannel("a"), [...conn.channels]]).toEqual([1, true, ["a"]]);
    conn.addChannel("b");
    expect([conn.channelCount, conn.hasChannel("b"), [...conn.channels]]).toEqual([
      2,
      true,
      ["a", "b"],
    ]);
    expect(conn.removeChannel("a")).toBe(true);
    expect(conn.removeChannel("a")).toBe(false);
    expect(conn.removeChannel("b")).toBe(true);
    expect([conn.channelCount, conn.hasChannel("b"), [...conn.channels]]).toEqual([0, false, []]);
    conn.addChannel("c");
    expect(conn.removeChannel("d")).toBe(false);
    expect(conn.removeChannel("c")).toBe(true);
    expect(conn.channelCount).toBe(0);
  });
});
