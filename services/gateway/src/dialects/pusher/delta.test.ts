import { applyDelta } from "fossil-delta";
import { describe, expect, it } from "vitest";
import { decode, encode } from "./codec.js";
import { DeltaBases } from "./delta.js";

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** What Sockudo's client does: strip the marker from a full frame, or apply a delta to the base. */
class Receiver {
  private base = "";
  take(raw: string): { event: string; frame: string } {
    const f = JSON.parse(raw) as { event: string; data: Record<string, unknown> };
    if (f.event === "pusher:delta") {
      const d = f.data as { event: string; delta: string };
      const out = applyDelta(
        utf8.encode(this.base),
        new Uint8Array(Buffer.from(d.delta, "base64")),
      );
      this.base = text.decode(out);
      return { event: d.event, frame: this.base };
    }
    this.base = raw.replace(/,"__delta_seq":\d+/, "");
    return { event: f.event, frame: this.base };
  }
}

/** A ticker update of ~300 bytes where only a few numbers change: what deltas are for. */
const frameOf = (i: number, price: number) =>
  encode.event("ticker", "price", {
    symbol: "BTC-USD",
    price,
    volume: 1000 + i,
    exchange: "example-exchange",
    bids: [59990, 59980, 59970, 59960],
    asks: [60010, 60020, 60030, 60040],
    note: "prices in US dollars, é€ kept as UTF-8",
  });

describe("DeltaBases", () => {
  it("sends the first frame in full, later ones as deltas that rebuild the exact frame", () => {
    const bases = new DeltaBases();
    const rx = new Receiver();
    for (let i = 0; i < 10; i++) {
      const frame = frameOf(i, 60000 + i);
      const out = bases.encode("ticker", "price", 100 + i, frame);
      if (i === 0) expect(out).toBe(encode.withDeltaSeq(frame, 100));
      else expect(JSON.parse(out)).toMatchObject({ event: "pusher:delta", channel: "ticker" });
      expect(rx.take(out)).toEqual({ event: "price", frame });
    }
  });

  it("carries Sockudo's fields: target event, seq, base_seq, algorithm", () => {
    const bases = new DeltaBases();
    bases.encode("ticker", "price", 7, frameOf(0, 1));
    const out = JSON.parse(bases.encode("ticker", "price", 9, frameOf(1, 2))) as {
      data: Record<string, unknown>;
    };
    expect(out.data).toMatchObject({ event: "price", seq: 9, base_seq: 7, algorithm: "fossil" });
  });

  it("falls back to the full frame when the delta is not smaller", () => {
    const bases = new DeltaBases();
    bases.encode("c", "x", 1, encode.event("c", "x", "a"));
    const small = encode.event("c", "x", "b");
    expect(bases.encode("c", "x", 2, small)).toBe(encode.withDeltaSeq(small, 2));
  });

  it("keeps one base per channel and forgets it on drop", () => {
    const bases = new DeltaBases();
    bases.encode("a", "x", 1, frameOf(0, 1));
    bases.encode("b", "x", 2, frameOf(0, 1));
    bases.encode("a", "x", 3, frameOf(1, 2));
    expect(bases.size).toBe(2);
    bases.drop("a");
    expect(bases.size).toBe(1);
    const frame = frameOf(2, 3);
    expect(bases.encode("a", "x", 4, frame)).toBe(encode.withDeltaSeq(frame, 4));
  });
});

describe("codec: Sockudo extension frames", () => {
  it("decodes the delta opt-in with or without algorithms", () => {
    expect(decode('{"event":"pusher:enable_delta_compression"}')).toEqual({
      ok: true,
      command: { type: "enable_delta", algorithms: undefined },
    });
    expect(
      decode('{"event":"pusher:enable_delta_compression","data":{"algorithms":["fossil"]}}'),
    ).toEqual({ ok: true, command: { type: "enable_delta", algorithms: ["fossil"] } });
    expect(decode('{"event":"pusher:enable_delta_compression","data":{"algorithms":"x"}}').ok).toBe(
      false,
    );
  });

  it("decodes a subscribe filter (or Sockudo's tags_filter); a bad one is kept as a refusal", () => {
    const ok = decode(
      '{"event":"pusher:subscribe","data":{"channel":"m","filter":{"t":{"eq":"goal"}}}}',
    );
    expect(ok).toMatchObject({ ok: true, command: { filter: { ok: true } } });
    const alias = decode(
      '{"event":"pusher:subscribe","data":{"channel":"m","tags_filter":{"key":"t","cmp":"ex"}}}',
    );
    expect(alias).toMatchObject({ ok: true, command: { filter: { ok: true } } });
    const bad = decode('{"event":"pusher:subscribe","data":{"channel":"m","filter":[1]}}');
    expect(bad).toMatchObject({ ok: true, command: { filter: { ok: false } } });
  });

  it("decodes delta_sync_error and encodes the confirmation", () => {
    expect(decode('{"event":"pusher:delta_sync_error","data":{"channel":"m"}}')).toEqual({
      ok: true,
      command: { type: "delta_sync_error", channel: "m" },
    });
    expect(JSON.parse(encode.deltaCompressionEnabled())).toEqual({
      event: "pusher:delta_compression_enabled",
      data: { enabled: true, algorithm: "fossil" },
    });
  });
});
