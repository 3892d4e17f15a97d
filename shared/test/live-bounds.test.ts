import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeliveryGap } from "../src/engine/engine.js";
import { JetStreamEngine } from "../src/engine/jetstream.js";
import { eventsOf, lossyLiveChannel } from "./lossy-live.js";
import { type NatsHandle, startNats } from "./nats-harness.js";
import { waitFor } from "./wait.js";

const limits = { historyPerChannel: 100, historyMaxAgeSec: 0, dedupeWindowSec: 60 };
/** Short bounds so each case resolves in a second or two. */
const live = { checkMs: 200, gapMs: 1000 };

let nats: NatsHandle;
let engine: JetStreamEngine;
beforeAll(async () => {
  nats = await startNats({ jetstream: true });
  engine = await JetStreamEngine.connect({ servers: nats.urls, name: "bounds" });
});
afterAll(async () => {
  await engine?.close();
  await nats?.stop();
});

describe("live delivery bounds", () => {
  // A lost live message is normally revealed by the next event's
  // Nats-Last-Sequence; on a quiet channel there is no next event, so only
  // the periodic position check can find it.
  it("finds a quiet channel's lost last event by the position check", async () => {
    const raw = await connect({ servers: nats.urls });
    try {
      const app = `quiet${Date.now()}`;
      await engine.ensureApp(app, limits);
      const { got, gaps, errors, close } = await lossyLiveChannel(raw, app, "c", () => true, {
        live,
      });
      const { seq } = await engine.publish(app, "c", { name: "only", data: 1 });
      await waitFor(() => eventsOf(got).length > 0, { what: "the dropped event" });
      expect(eventsOf(got).map((e) => e.seq)).toEqual([seq]);
      close();
      expect(gaps).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await raw.close();
    }
  });

  // A gap the engine cannot read must not hold the live event behind it for
  // ever, nor be skipped: after the bound the subscription ends and says which
  // events may be missing, so the subscriber replays them from history.
  it("ends the subscription, naming the gap, when a gap cannot be read within the bound", async () => {
    const raw = await connect({ servers: nats.urls });
    const readerNc = await connect({ servers: nats.urls });
    try {
      const app = `unfillable${Date.now()}`;
      await engine.ensureApp(app, limits);
      let dropFirst = true;
      const { got, gaps, close } = await lossyLiveChannel(
        raw,
        app,
        "c",
        () => {
          const drop = dropFirst;
          dropFirst = false;
          return drop;
        },
        { live: { checkMs: 60_000, gapMs: 1000 }, readerNc },
      );
      const before = await engine.lastSeq(app, "c");
      // The reads that would fill the gap fail from here on.
      await readerNc.close();
      const first = await engine.publish(app, "c", { name: "lost", data: 1 });
      const second = await engine.publish(app, "c", { name: "held", data: 2 });
      await waitFor(() => gaps.length > 0, { what: "the gap to be reported" });
      expect(gaps).toEqual([
        { afterSeq: before, beforeSeq: second.seq, reason: expect.any(String) } as DeliveryGap,
      ]);
      expect(first.seq).toBeGreaterThan(before);
      // Nothing after the gap is delivered without what came before it.
      expect(eventsOf(got)).toEqual([]);
      close();
    } finally {
      await raw.close();
    }
  });

  // NATS gone for longer than the bound: the gateway cannot know what it
  // missed, so it must say so rather than stay silent until a reconnect.
  it("ends every live subscription when the position cannot be checked within the bound", async () => {
    await using server = await startNats({ jetstream: true });
    const e = await JetStreamEngine.connect({ servers: server.urls, name: "down", live });
    try {
      const app = "downbound";
      await e.ensureApp(app, limits);
      const { seq } = await e.publish(app, "c", { name: "n", data: 1 });
      const gaps: DeliveryGap[] = [];
      const sub = e.subscribe(app, "c", () => {}, { onGap: (g) => gaps.push(g) });
      await sub.ready;
      await server.kill(0);
      await waitFor(() => gaps.length > 0, { what: "the unconfirmed position to be reported" });
      expect(gaps).toEqual([{ afterSeq: seq, beforeSeq: null, reason: expect.any(String) }]);
      sub.close();
    } finally {
      await e.close();
    }
  });
});
