import { describe, expect, it } from "vitest";
import { addAcks, compact, EMPTY, inboxOf, parseAckState } from "./inbox.js";

describe("chat ack state", () => {
  it("inbox names are not valid client channel names", () => {
    expect(inboxOf("u1")).toBe("#chat.u1");
  });

  it("adds acks above the floor, sorted and distinct", () => {
    expect(addAcks({ floor: 10, acked: [15] }, [12, 9, 15, 30])).toEqual({
      floor: 10,
      acked: [12, 15, 30],
    });
  });

  // The bound: the list cannot grow without end, and an unacked event is never given up.
  it("forgets the oldest acks past the bound without moving the floor", () => {
    // Event 2 may come again (a duplicate); the floor stays below anything unacked.
    expect(addAcks({ floor: 0, acked: [2, 4] }, [6, 8], 3)).toEqual({ floor: 0, acked: [4, 6, 8] });
  });

  it("moves the floor to just before the first unacked event a replay saw", () => {
    const s = { floor: 10, acked: [12, 15, 30] };
    expect(compact(s, { firstUnacked: 20, maxSeen: 30 })).toEqual({ floor: 19, acked: [30] });
  });

  it("moves the floor to the last event seen when all were acked", () => {
    const s = { floor: 10, acked: [12, 15, 30] };
    expect(compact(s, { firstUnacked: undefined, maxSeen: 15 })).toEqual({
      floor: 15,
      acked: [30],
    });
  });

  it("never moves the floor down", () => {
    const s = { floor: 10, acked: [12] };
    expect(compact(s, { firstUnacked: 5, maxSeen: 12 })).toBe(s);
  });

  it("reads back only well-formed state", () => {
    expect(parseAckState({ floor: 3, acked: [9, 2, "x", 9, 5] })).toEqual({
      floor: 3,
      acked: [5, 9],
    });
    expect(parseAckState("garbage")).toEqual(EMPTY);
    expect(parseAckState([1])).toEqual(EMPTY);
  });
});
