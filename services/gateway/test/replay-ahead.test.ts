import { describe, expect, it } from "vitest";
import type { DeliveryHandler, SubscribeOptions } from "../../../shared/src/engine/engine.js";
import { MemoryEngine } from "../../../shared/src/engine/memory.js";
import { startTestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";

/**
 * Memory storage whose live deliveries can be held back: a JetStream channel
 * that is still filling a gap delivers late, while history already has the
 * events.
 */
class LaggingEngine extends MemoryEngine {
  private held: (() => void)[] | null = null;
  /** Reads of a channel's last seq. */
  lastSeqReads = 0;

  override lastSeq(appId: string, channel: string): Promise<number> {
    this.lastSeqReads++;
    return super.lastSeq(appId, channel);
  }

  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const deliver of held) deliver();
  }

  override subscribe(
    appId: string,
    channel: string,
    handler: DeliveryHandler,
    _options?: SubscribeOptions,
  ) {
    return super.subscribe(appId, channel, (d) => {
      if (this.held) this.held.push(() => handler(d));
      else handler(d);
    });
  }
}

const seqs = (frames: Frame[]) => frames.map((f) => f.payload.seq as number);

describe("a replay that is ahead of live delivery", () => {
  // A replay reads history directly, so it can already hold events the
  // channel's live delivery has not reached yet; when those arrive live, the
  // replayed subscriber must not get them a second time.
  it("gets no event twice when the late live copies arrive", async () => {
    const engine = new LaggingEngine();
    await using gw = await startTestGateway({ engine });
    const stream = "ahead";
    const first = await heraldConnect(heraldUrl(gw.url, "first", [stream]));
    await request(first, "subscribe", { stream_id: stream });
    const pub = await heraldConnect(heraldUrl(gw.url, "pub", [stream]));

    engine.hold();
    const a = await request(pub, "event.publish", { stream_id: stream, type: "n", body: 1 });
    const replayer = await heraldConnect(heraldUrl(gw.url, "replayer", [stream]));
    await request(replayer, "subscribe", { stream_id: stream, last_seq: 0 });
    await replayer.next<Frame>(isType("event.new", (p) => p.body === 1));
    engine.release();
    const b = await request(pub, "event.publish", { stream_id: stream, type: "n", body: 2 });
    for (const c of [first, replayer])
      await c.next<Frame>(isType("event.new", (p) => p.body === 2));

    const expected = [a.payload.seq, b.payload.seq];
    expect(seqs(replayer.all<Frame>(isType("event.new")))).toEqual(expected);
    expect(seqs(first.all<Frame>(isType("event.new")))).toEqual(expected);
    for (const c of [first, pub, replayer]) c.close();
  });
});

describe("joining a channel the gateway already follows", () => {
  // A later join goes live where the channel's engine subscription had
  // delivered up to when it joined, so it reads no position of its own; an
  // event stored just before, still on its way, reaches it once, live.
  it("reads no position, and an event still on its way arrives once", async () => {
    const engine = new LaggingEngine();
    await using gw = await startTestGateway({ engine });
    const stream = "joined";
    const first = await heraldConnect(heraldUrl(gw.url, "first", [stream]));
    await request(first, "subscribe", { stream_id: stream });
    const pub = await heraldConnect(heraldUrl(gw.url, "pub", [stream]));
    const a = await request(pub, "event.publish", { stream_id: stream, type: "n", body: 1 });
    await first.next<Frame>(isType("event.new", (p) => p.body === 1));

    engine.hold();
    const b = await request(pub, "event.publish", { stream_id: stream, type: "n", body: 2 });
    const late = await heraldConnect(heraldUrl(gw.url, "late", [stream]));
    const subscribed = await request(late, "subscribe", { stream_id: stream });
    // Delivered here up to `a`: `b` is still on its way.
    expect(subscribed.payload.seq).toBe(a.payload.seq);
    engine.release();
    const c = await request(pub, "event.publish", { stream_id: stream, type: "n", body: 3 });
    for (const client of [first, late])
      await client.next<Frame>(isType("event.new", (p) => p.body === 3));

    expect(seqs(late.all<Frame>(isType("event.new")))).toEqual([b.payload.seq, c.payload.seq]);
    expect(seqs(first.all<Frame>(isType("event.new")))).toEqual([
      a.payload.seq,
      b.payload.seq,
      c.payload.seq,
    ]);
    expect(engine.lastSeqReads).toBe(0);
    for (const client of [first, pub, late]) client.close();
  });

  // A client back from another gateway resubscribes from the last seq it
  // has, which this gateway may not have received yet: `subscribed.seq`
  // must not fall below it, or the client takes its history for reset.
  it("answers a replay with the latest seq, even one this gateway has not delivered yet", async () => {
    const engine = new LaggingEngine();
    await using gw = await startTestGateway({ engine });
    const stream = "returning";
    const first = await heraldConnect(heraldUrl(gw.url, "first", [stream]));
    await request(first, "subscribe", { stream_id: stream });
    const pub = await heraldConnect(heraldUrl(gw.url, "pub", [stream]));
    await request(pub, "event.publish", { stream_id: stream, type: "n", body: 1 });
    await first.next<Frame>(isType("event.new", (p) => p.body === 1));

    engine.hold();
    const b = await request(pub, "event.publish", { stream_id: stream, type: "n", body: 2 });
    const back = await heraldConnect(heraldUrl(gw.url, "back", [stream]));
    const subscribed = await request(back, "subscribe", {
      stream_id: stream,
      last_seq: b.payload.seq,
    });
    expect(subscribed.payload.seq).toBe(b.payload.seq);
    engine.release();
    const c = await request(pub, "event.publish", { stream_id: stream, type: "n", body: 3 });
    await back.next<Frame>(isType("event.new", (p) => p.body === 3));
    expect(seqs(back.all<Frame>(isType("event.new")))).toEqual([c.payload.seq]);
    for (const client of [first, pub, back]) client.close();
  });
});
