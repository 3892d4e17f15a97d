import { describe, expect, it } from "vitest";
import { QueueFullError } from "./errors.js";
import { OfflineQueue } from "./offline-queue.js";

describe("OfflineQueue", () => {
  it("keeps order and refuses past capacity with a clear error", () => {
    const q = new OfflineQueue<number>(2);
    q.push(1);
    q.push(2);
    expect(() => q.push(3)).toThrow(QueueFullError);
    expect(() => q.push(3)).toThrow(/offline queue full \(2 waiting/);
    expect(q.drain()).toEqual([1, 2]);
    expect(q.size).toBe(0);
    q.push(3);
    expect(q.drain()).toEqual([3]);
  });

  it("takes back items already accepted in front, even past capacity", () => {
    const q = new OfflineQueue<string>(2);
    q.push("c");
    q.push("d");
    q.unshiftAll(["a", "b"]);
    expect(q.size).toBe(4);
    expect(() => q.push("e")).toThrow(QueueFullError);
    expect(q.drain()).toEqual(["a", "b", "c", "d"]);
  });

  it("removes matching items", () => {
    const q = new OfflineQueue<number>(5);
    for (const n of [1, 2, 3, 4]) q.push(n);
    q.remove((n) => n % 2 === 0);
    expect(q.drain()).toEqual([1, 3]);
  });
});
