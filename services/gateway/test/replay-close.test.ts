import { describe, expect, it } from "vitest";
import type {
  DeliveryHandler,
  HistoryPage,
  HistoryQuery,
  SubscribeOptions,
} from "../../../shared/src/engine/engine.js";
import { MemoryEngine } from "../../../shared/src/engine/memory.js";
import { waitFor } from "../../../shared/test/wait.js";
import { startTestGateway, TEST_APP } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";

/** Memory storage that counts replay page reads and holds back the second one's answer. */
class GatedEngine extends MemoryEngine {
  pageReads = 0;
  liveClosed = 0;
  private open: (() => void) | undefined;
  private readonly gate = new Promise<void>((resolve) => {
    this.open = resolve;
  });

  release(): void {
    this.open?.();
  }

  override async history(appId: string, channel: string, q: HistoryQuery): Promise<HistoryPage> {
    if (q.afterSeq !== undefined && ++this.pageReads === 2) await this.gate;
    return super.history(appId, channel, q);
  }

  override subscribe(
    appId: string,
    channel: string,
    handler: DeliveryHandler,
    _options?: SubscribeOptions,
  ) {
    const sub = super.subscribe(appId, channel, handler);
    return {
      ready: sub.ready,
      close: () => {
        this.liveClosed++;
        sub.close();
      },
    };
  }
}

describe("a replay whose connection closes", () => {
  // Each page read of a JetStream replay parks a consumer on the server for
  // the next one: a replay nobody receives must not read on.
  it("reads no page after the one it was waiting for", async () => {
    const engine = new GatedEngine();
    await using gw = await startTestGateway({
      engine,
      env: { TIDINGS_HISTORY_PER_CHANNEL: "2000" },
    });
    const stream = "closing";
    // Three replay pages of 500.
    for (let i = 0; i < 1200; i++)
      await engine.publish(TEST_APP.id, stream, { name: "n", data: i });
    const replayer = await heraldConnect(heraldUrl(gw.url, "replayer", [stream]));
    replayer.send({ type: "subscribe", ref: "s", payload: { stream_id: stream, last_seq: 0 } });
    await replayer.next(isType("event.new"));
    await waitFor(() => engine.pageReads === 2, { what: "the second page read" });
    replayer.close();
    await waitFor(() => engine.liveClosed === 1, { what: "the gateway to drop the subscriber" });
    engine.release();
    // The hub's step after the held read is microtasks only: one turn of the
    // event loop runs them all.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(engine.pageReads).toBe(2);
  });

  // The client was told at the start whether the replay is complete: events
  // trimmed from under a later page are told the only way left, by closing
  // with the reconnect code, so the client replays from its last seq and its
  // next subscribe answers `replay: "truncated"`.
  it("closes for replay when history is trimmed past a page it sent", async () => {
    const engine = new GatedEngine();
    await using gw = await startTestGateway({
      engine,
      env: { TIDINGS_HISTORY_PER_CHANNEL: "1000" },
    });
    const stream = "trimmed";
    for (let i = 0; i < 1000; i++)
      await engine.publish(TEST_APP.id, stream, { name: "n", data: i });
    const replayer = await heraldConnect(heraldUrl(gw.url, "replayer", [stream]));
    const answer = await request(replayer, "subscribe", { stream_id: stream, last_seq: 0 });
    expect(answer.payload.replay).toBeUndefined();
    await waitFor(() => engine.pageReads === 2, { what: "the second page read" });
    // Seqs 1 to 600 leave history; the first page sent 1 to 500.
    for (let i = 0; i < 600; i++) await engine.publish(TEST_APP.id, stream, { name: "n", data: i });
    engine.release();
    expect((await replayer.waitClosed()).code).toBe(1012);
    const got = replayer.all<Frame>(isType("event.new")).map((f) => f.payload.seq as number);
    expect(got.at(-1)).toBe(500);

    const again = await heraldConnect(heraldUrl(gw.url, "replayer", [stream]));
    const resumed = await request(again, "subscribe", { stream_id: stream, last_seq: 500 });
    expect(resumed.payload.replay).toBe("truncated");
    expect((await again.next<Frame>(isType("event.new"))).payload.seq).toBe(601);
    again.close();
  });
});
