import { describe, expect, it } from "vitest";
import { describeEngineContract } from "../../test/engine.contract.js";
import { MemoryEngine } from "./memory.js";

describeEngineContract("memory", async () => {
  const engine = new MemoryEngine();
  return { engine, dispose: () => engine.close() };
});

// A full channel's trim only moves an index and compacts now and then: reads
// taken between compactions must still see exactly the newest history.
describe("memory engine history trim", () => {
  it("keeps the newest historyPerChannel events after every publish", async () => {
    const engine = new MemoryEngine();
    await engine.ensureApp("a", { historyPerChannel: 10, historyMaxAgeSec: 0, dedupeWindowSec: 1 });
    const seqs: number[] = [];
    for (let i = 0; i < 60; i++) {
      seqs.push((await engine.publish("a", "c", { name: "n", data: i })).seq);
      expect(await engine.lastSeq("a", "c")).toBe(seqs.at(-1));
      // Every third step: reads between publishes that each trimmed one.
      if (i % 3 !== 0) continue;
      const kept = seqs.slice(-10);
      const page = await engine.history("a", "c", { afterSeq: 0, limit: 100 });
      expect(page.events.map((e) => e.seq)).toEqual(kept);
      expect(page.truncated).toBe(seqs.length > 10);
      const newest = await engine.history("a", "c", { limit: 4 });
      expect(newest.events.map((e) => e.seq)).toEqual(kept.slice(-4));
      if (seqs.length > 10) expect(await engine.getEvent("a", "c", seqs[0] ?? 0)).toBeNull();
      expect((await engine.getEvent("a", "c", kept[0] ?? 0))?.data).toBe(i + 1 - kept.length);
    }
  });

  it("expires events by age and reports the channel empty once all are gone", async () => {
    let now = 1_000_000;
    const engine = new MemoryEngine({ now: () => now });
    await engine.ensureApp("a", {
      historyPerChannel: 100,
      historyMaxAgeSec: 10,
      dedupeWindowSec: 1,
    });
    const first = await engine.publish("a", "c", { name: "n", data: 0 });
    now += 6_000;
    const second = await engine.publish("a", "c", { name: "n", data: 1 });
    now += 6_000;
    const third = await engine.publish("a", "c", { name: "n", data: 2 });
    const page = await engine.history("a", "c", { afterSeq: 0, limit: 10 });
    expect(page.events.map((e) => e.seq)).toEqual([second.seq, third.seq]);
    expect(page.truncated).toBe(true);
    expect(await engine.getEvent("a", "c", first.seq)).toBeNull();
    now += 20_000;
    expect((await engine.history("a", "c", { afterSeq: 0, limit: 10 })).events).toEqual([]);
    expect(await engine.lastSeq("a", "c")).toBe(0);
  });
});

// A channel per user or per document: the engine must not keep one entry for
// every channel ever subscribed to once nothing is left in it.
describe("memory engine channel state", () => {
  it("drops a channel's state when its last subscriber leaves and it holds no history", async () => {
    const engine = new MemoryEngine();
    await engine.ensureApp("a", { historyPerChannel: 1, historyMaxAgeSec: 0, dedupeWindowSec: 1 });
    const subs = Array.from({ length: 100 }, (_, i) => engine.subscribe("a", `c${i}`, () => {}));
    const second = engine.subscribe("a", "c0", () => {});
    expect(engine.channelsHeld("a")).toBe(100);
    for (const s of subs) s.close();
    // c0 still has a subscriber.
    expect(engine.channelsHeld("a")).toBe(1);
    second.close();
    second.close();
    expect(engine.channelsHeld("a")).toBe(0);
    await engine.history("a", "never", { afterSeq: 0, limit: 10 });
    expect(engine.channelsHeld("a")).toBe(0);

    // History, or the mark of a trimmed one (a replay must still report it truncated), stays.
    const got: number[] = [];
    const kept = engine.subscribe("a", "h", (d) => d.type === "event" && got.push(d.event.seq));
    const first = await engine.publish("a", "h", { name: "n", data: 1 });
    await engine.publish("a", "h", { name: "n", data: 2 });
    kept.close();
    expect(engine.channelsHeld("a")).toBe(1);
    expect(got).toHaveLength(2);
    const again = engine.subscribe("a", "h", () => {});
    again.close();
    const page = await engine.history("a", "h", { afterSeq: 0, limit: 10 });
    expect(page.truncated).toBe(true);
    expect(page.events.map((e) => e.seq)).not.toContain(first.seq);
    expect(engine.channelsHeld("a")).toBe(1);
  });

  it("calls no handler closed during a delivery, and gives one subscribed during it only later events", async () => {
    const engine = new MemoryEngine();
    const calls: string[] = [];
    let b: { close(): void } | undefined;
    let c: { close(): void } | undefined;
    const a = engine.subscribe("a", "x", (d) => {
      calls.push(`a${d.type === "event" ? d.event.seq : ""}`);
      if (b) {
        a.close();
        b.close();
        b = undefined;
        c = engine.subscribe("a", "x", (d2) =>
          calls.push(`c${d2.type === "event" ? d2.event.seq : ""}`),
        );
      }
    });
    b = engine.subscribe("a", "x", () => calls.push("b"));
    const first = await engine.publish("a", "x", { name: "n", data: 1 });
    expect(calls).toEqual([`a${first.seq}`]);
    const second = await engine.publish("a", "x", { name: "n", data: 2 });
    expect(calls).toEqual([`a${first.seq}`, `c${second.seq}`]);
    c?.close();
    expect(engine.channelsHeld("a")).toBe(1);
  });
});
