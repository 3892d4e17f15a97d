import { describe, expect, it } from "vitest";
import { PartitionSeqs } from "./js-partitions.js";

describe("partition seqs", () => {
  it("are stream seqs at one partition", () => {
    const one = new PartitionSeqs(0, 1);
    expect(one.identity).toBe(true);
    for (const s of [0, 1, 2, 1000]) {
      expect(one.toApp(s)).toBe(s);
      expect(one.atOrBelow(s)).toBe(s);
    }
  });

  // Unique within the app, increasing within a channel: what StoredEvent.seq promises.
  it("interleave partitions into unique app seqs, in stream order", () => {
    const n = 4;
    const all = new Set<number>();
    for (let p = 0; p < n; p++) {
      const seqs = new PartitionSeqs(p, n);
      let previous = 0;
      for (let s = 1; s <= 50; s++) {
        const app = seqs.toApp(s);
        expect(app).toBeGreaterThan(previous);
        expect(all.has(app)).toBe(false);
        all.add(app);
        expect(seqs.exact(app)).toBe(s);
        previous = app;
      }
    }
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(new PartitionSeqs(2, 4).toApp(0)).toBe(0);
  });

  // History bounds: app seqs above x in this partition are the stream seqs above atOrBelow(x).
  it("convert any app seq bound to the partition's stream seqs", () => {
    const seqs = new PartitionSeqs(1, 3);
    for (let x = 0; x <= 40; x++) {
      const s = seqs.atOrBelow(x);
      expect(seqs.toApp(s)).toBeLessThanOrEqual(x);
      expect(seqs.toApp(s + 1)).toBeGreaterThan(x);
      if (seqs.toApp(s) !== x || x === 0) expect(seqs.exact(x)).toBeNull();
    }
  });
});
