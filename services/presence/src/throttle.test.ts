import { describe, expect, it } from "vitest";
import { CountThrottle, type Timers } from "./throttle.js";

/** Manual clock: timers fire only when the test advances time. */
function manualTimers() {
  let now = 0;
  const due: { at: number; fn: () => void; id: number }[] = [];
  let next = 1;
  const timers: Timers = {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = next++;
      due.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout: (h) => {
      const i = due.findIndex((d) => d.id === h);
      if (i >= 0) due.splice(i, 1);
    },
  };
  const advance = (ms: number) => {
    now += ms;
    for (;;) {
      due.sort((a, b) => a.at - b.at);
      const first = due[0];
      if (!first || first.at > now) return;
      due.shift();
      first.fn();
    }
  };
  return { timers, advance, pending: () => due.length };
}

describe("CountThrottle", () => {
  // Clients need the latest count quickly but never more than once per second per channel.
  it("sends the first change at once and coalesces the rest into one trailing send", () => {
    const sent: number[] = [];
    const t = manualTimers();
    const th = new CountThrottle((_a, _c, n) => sent.push(n), 1000, t.timers);
    th.update("a", "c", 1);
    th.update("a", "c", 2);
    th.update("a", "c", 3);
    expect(sent).toEqual([1]);
    t.advance(999);
    expect(sent).toEqual([1]);
    t.advance(1);
    expect(sent).toEqual([1, 3]);
    t.advance(5000);
    expect(sent).toEqual([1, 3]);
    th.update("a", "c", 4);
    expect(sent).toEqual([1, 3, 4]);
  });

  // A burst that ends where it started changes nothing a client can see.
  it("skips the trailing send when the count returned to the sent value", () => {
    const sent: number[] = [];
    const t = manualTimers();
    const th = new CountThrottle((_a, _c, n) => sent.push(n), 1000, t.timers);
    th.update("a", "c", 1);
    th.update("a", "c", 2);
    th.update("a", "c", 1);
    t.advance(1000);
    expect(sent).toEqual([1]);
  });

  // Channels are independent; an emptied channel is forgotten after its interval.
  it("throttles per channel and forgets empty channels", () => {
    const sent: string[] = [];
    const t = manualTimers();
    const th = new CountThrottle((_a, c, n) => sent.push(`${c}=${n}`), 1000, t.timers);
    th.update("a", "x", 1);
    th.update("a", "y", 1);
    th.update("a", "x", 0);
    t.advance(1000);
    expect(sent).toEqual(["x=1", "y=1", "x=0"]);
    t.advance(1000);
    expect(t.pending()).toBe(0);
  });

  // A new owner starts from the inherited count and must not re-announce it.
  it("seeded counts are not announced again", () => {
    const sent: number[] = [];
    const t = manualTimers();
    const th = new CountThrottle((_a, _c, n) => sent.push(n), 1000, t.timers);
    th.seed("a", "c", 5);
    th.update("a", "c", 5);
    expect(sent).toEqual([]);
    th.update("a", "c", 6);
    expect(sent).toEqual([6]);
    th.close();
    expect(t.pending()).toBe(0);
  });

  // A connect storm makes a new channel per connection: one timer serves them
  // all, and each channel's trailing send still comes at its own interval's end.
  it("runs every channel's interval on one timer", () => {
    const sent: string[] = [];
    const t = manualTimers();
    const th = new CountThrottle((_a, c, n) => sent.push(`${c}=${n}`), 1000, t.timers);
    for (let i = 0; i < 100; i++) {
      th.update("a", `c${i}`, 1);
      th.update("a", `c${i}`, 2);
      expect(t.pending()).toBe(1);
      t.advance(10);
    }
    // c0 started at 0, c99 at 990: by 1000 only c0's interval is over.
    expect(sent.filter((x) => x.endsWith("=2"))).toEqual(["c0=2"]);
    t.advance(490);
    expect(sent.filter((x) => x.endsWith("=2"))).toHaveLength(50);
    // The trailing sends start intervals of their own, still on the one timer.
    expect(t.pending()).toBe(1);
    th.update("a", "c0", 3);
    t.advance(509);
    expect(sent.filter((x) => x.endsWith("=2"))).toHaveLength(100);
    expect(sent).not.toContain("c0=3");
    t.advance(1);
    expect(sent).toContain("c0=3");
    t.advance(5000);
    expect(t.pending()).toBe(0);
    expect(sent).toHaveLength(201);
  });

  // With the memory engine a count signal is delivered synchronously, and what
  // it causes (a slow consumer closed) can change the same channel's count.
  it("takes an update made from inside its own emission as the trailing send", () => {
    const sent: number[] = [];
    const t = manualTimers();
    let inside: number | undefined;
    const th = new CountThrottle(
      (_a, _c, n) => {
        sent.push(n);
        if (inside !== undefined) {
          const next = inside;
          inside = undefined;
          th.update("a", "c", next);
        }
      },
      1000,
      t.timers,
    );
    inside = 0;
    th.update("a", "c", 1);
    expect(sent).toEqual([1]);
    t.advance(1000);
    expect(sent).toEqual([1, 0]);
    // A trailing send that causes a change: that change is the next trailing send.
    th.update("a", "c", 2);
    inside = 1;
    t.advance(1000);
    expect(sent).toEqual([1, 0, 2]);
    t.advance(1000);
    expect(sent).toEqual([1, 0, 2, 1]);
    t.advance(5000);
    expect(t.pending()).toBe(0);
  });
});
