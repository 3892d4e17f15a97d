/**
 * Sockudo extensions of the Pusher dialect over raw WebSockets: tag filters
 * on subscribe and fossil delta compression, next to clients that opt into
 * neither and must see exactly the frames they always did.
 */
import { applyDelta } from "fossil-delta";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../shared/test/wait.js";
import { startTestGateway, type TestGateway } from "./harness.js";
import {
  dataOf,
  isEvent,
  type PusherFrame,
  postJson,
  pusherServer,
  rawPusher,
} from "./pusher-client.js";
import type { TestClient } from "./ws-client.js";

let gw: TestGateway;
const open: TestClient[] = [];
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  for (const c of open) c.ws.close();
  await gw?.stop();
});

/** A raw client that also keeps every frame's exact text, which delta bases are made of. */
async function rawClient(): Promise<{ c: TestClient; socketId: string; texts: string[] }> {
  const { c, socketId } = await rawPusher(gw);
  const texts: string[] = [];
  c.ws.on("message", (d) => texts.push(d.toString()));
  open.push(c);
  return { c, socketId, texts };
}

async function subscribe(c: TestClient, channel: string, extra: Record<string, unknown> = {}) {
  c.send({ event: "pusher:subscribe", data: { channel, ...extra } });
  await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", channel));
}

async function publish(channel: string, name: string, data: unknown, tags?: unknown) {
  const res = await postJson(pusherServer(gw), "/events", {
    name,
    channel,
    data: JSON.stringify(data),
    ...(tags === undefined ? {} : { tags }),
  });
  expect(res.status).toBe(200);
}

/** Event names a client got on `channel` up to and including `last`. */
async function namesUntil(c: TestClient, channel: string, last: string): Promise<string[]> {
  const names: string[] = [];
  for (;;) {
    const f = await c.next<PusherFrame>(
      (x) => x.channel === channel && !x.event.startsWith("pusher"),
    );
    names.push(f.event);
    if (f.event === last) return names;
  }
}

describe("tag filtering", () => {
  it("delivers only matching events to filtering subscribers; others see today's frames", async () => {
    const ch = "match-1";
    const eq = await rawClient();
    const neq = await rawClient();
    const inList = await rawClient();
    const combined = await rawClient();
    const plain = await rawClient();
    await subscribe(eq.c, ch, { filter: { event_type: { eq: "goal" } } });
    await subscribe(neq.c, ch, { filter: { team: { neq: "home" } } });
    await subscribe(inList.c, ch, { filter: { team: { in: ["away", "neutral"] } } });
    await subscribe(combined.c, ch, {
      filter: {
        or: [
          { and: [{ team: { eq: "home" } }, { event_type: { eq: "card" } }] },
          { final: { exists: true } },
        ],
      },
    });
    await subscribe(plain.c, ch);
    await publish(ch, "goal-home", { n: 1 }, { event_type: "goal", team: "home" });
    await publish(ch, "goal-away", { n: 2 }, { event_type: "goal", team: "away" });
    await publish(ch, "card-home", { n: 3 }, { event_type: "card", team: "home" });
    await publish(ch, "untagged", { n: 4 });
    // Matches every filter above, so each client's stream has a known end.
    await publish(ch, "end", { n: 5 }, { event_type: "goal", team: "away", final: "1" });

    expect(await namesUntil(eq.c, ch, "end")).toEqual(["goal-home", "goal-away", "end"]);
    expect(await namesUntil(neq.c, ch, "end")).toEqual(["goal-away", "end"]);
    expect(await namesUntil(inList.c, ch, "end")).toEqual(["goal-away", "end"]);
    expect(await namesUntil(combined.c, ch, "end")).toEqual(["card-home", "end"]);
    expect(await namesUntil(plain.c, ch, "end")).toEqual([
      "goal-home",
      "goal-away",
      "card-home",
      "untagged",
      "end",
    ]);
    // Exactly today's frame: no tags, no sequence marker.
    const last = plain.texts.find((t) => t.includes('"event":"end"'));
    expect(last).toBe(`{"event":"end","channel":"${ch}","data":"{\\"n\\":5}"}`);
  });

  it("accepts Sockudo's node form (tags_filter) as its client sends it", async () => {
    const ch = "match-2";
    const a = await rawClient();
    await subscribe(a.c, ch, { tags_filter: { key: "team", cmp: "eq", val: "home" } });
    await publish(ch, "away", {}, { team: "away" });
    await publish(ch, "home", {}, { team: "home" });
    expect(await namesUntil(a.c, ch, "home")).toEqual(["home"]);
  });

  it("refuses a malformed filter with subscription_error InvalidFilter, and stays connected", async () => {
    const a = await rawClient();
    a.c.send({
      event: "pusher:subscribe",
      data: { channel: "m3", filter: { team: { like: "h" } } },
    });
    const err = await a.c.next<PusherFrame>(isEvent("pusher:subscription_error", "m3"));
    expect(err.data).toEqual({
      type: "InvalidFilter",
      error: "unknown comparison like",
      status: 400,
    });
    await subscribe(a.c, "m3", { filter: { team: { eq: "x" } } });
  });

  it("does not filter client events", async () => {
    const ch = "private-match-4";
    const server = pusherServer(gw);
    const sender = await rawClient();
    const filtered = await rawClient();
    for (const x of [sender, filtered]) {
      const { auth } = server.authorizeChannel(x.socketId, ch);
      await subscribe(x.c, ch, { auth, ...(x === filtered ? { filter: { a: { eq: "b" } } } : {}) });
    }
    sender.c.send({ event: "client-typing", channel: ch, data: { on: true } });
    const got = await filtered.c.next<PusherFrame>(isEvent("client-typing", ch));
    expect(dataOf(got)).toEqual({ on: true });
  });

  it("validates tags on the HTTP API (events and batch)", async () => {
    const server = pusherServer(gw);
    // The server SDK throws on a non-2xx answer, with its status and body.
    const refused = (body: unknown) => postJson(server, "/events", body).catch((e: unknown) => e);
    const bad = await refused({ name: "x", channel: "c", data: "{}", tags: { team: 1 } });
    expect(bad).toMatchObject({ status: 400, body: "Invalid tags: tag team must be a string\n" });
    const batch = await postJson(server, "/batch_events", {
      batch: [
        { name: "x", channel: "c", data: "{}", tags: { ok: "yes" } },
        { name: "x", channel: "c", data: "{}", tags: ["no"] },
      ],
    }).catch((e: unknown) => e);
    expect(batch).toMatchObject({ status: 400 });
  });
});

type DeltaFrame = { event: "pusher:delta"; channel: string; data: DeltaData };
type DeltaData = { event: string; delta: string; seq: number; base_seq: number; algorithm: string };

/** Sockudo's client: full frames become the base (marker stripped), deltas rebuild from it. */
function reconstruct(texts: readonly string[], channel: string): string[] {
  let base = "";
  const out: string[] = [];
  for (const t of texts) {
    const f = JSON.parse(t) as PusherFrame;
    if (f.channel !== channel || f.event.startsWith("pusher_internal:")) continue;
    if (f.event === "pusher:delta") {
      const d = (f as DeltaFrame).data;
      expect(d.algorithm).toBe("fossil");
      const bytes = applyDelta(new TextEncoder().encode(base), Buffer.from(d.delta, "base64"));
      base = new TextDecoder().decode(bytes);
      expect((JSON.parse(base) as PusherFrame).event).toBe(d.event);
    } else {
      expect(t).toMatch(/,"__delta_seq":\d+}$/);
      base = t.replace(/,"__delta_seq":\d+/, "");
    }
    out.push(base);
  }
  return out;
}

/** Frames of `channel` that carry events (what delta compression applies to). */
const eventTexts = (texts: readonly string[], channel: string) =>
  texts.filter((t) => {
    const f = JSON.parse(t) as PusherFrame;
    return f.channel === channel && !f.event.startsWith("pusher_internal:");
  });

const tick = (i: number) => ({
  symbol: "BTC-USD",
  price: 60000 + i * 7,
  volume: 1200 + i,
  exchange: "example-exchange",
  bids: [59990 - i, 59980, 59970, 59960],
  asks: [60010 + i, 60020, 60030, 60040],
  note: "prices in US dollars",
});

/** A live match state of ~1 KB where a minute, a score and a possession figure change. */
const matchState = (i: number) => ({
  match: "home-vs-away",
  competition: "League One, matchday 12",
  minute: 10 + i,
  score: { home: Math.floor(i / 7), away: Math.floor(i / 11) },
  possession: { home: 50 + (i % 5), away: 50 - (i % 5) },
  home: {
    name: "Home Town FC",
    lineup: ["Keeper", "Left Back", "Centre Back", "Centre Back 2", "Right Back", "Holding Mid"],
    bench: ["Sub Keeper", "Sub Defender", "Sub Midfielder", "Sub Winger", "Sub Striker"],
  },
  away: {
    name: "Away City United",
    lineup: ["Goalie", "Full Back L", "Stopper", "Sweeper", "Full Back R", "Playmaker"],
    bench: ["Reserve Keeper", "Reserve Back", "Reserve Mid", "Reserve Forward"],
  },
  venue: { name: "Municipal Stadium", city: "Example City", capacity: 32000 },
  referee: "A. Referee",
});

async function enableDelta(c: TestClient) {
  c.send({ event: "pusher:enable_delta_compression", data: { algorithms: ["fossil"] } });
  const ok = await c.next<PusherFrame>(isEvent("pusher:delta_compression_enabled"));
  expect(ok.data).toEqual({ enabled: true, algorithm: "fossil" });
}

describe("delta compression", () => {
  it("sends the first event in full, then fossil deltas that rebuild the exact frames", async () => {
    const ch = "ticker-1";
    const delta = await rawClient();
    const plain = await rawClient();
    await enableDelta(delta.c);
    await subscribe(delta.c, ch);
    await subscribe(plain.c, ch);
    for (let i = 0; i < 20; i++) await publish(ch, "state", matchState(i));
    await waitFor(() => eventTexts(plain.texts, ch).length === 20, { what: "plain frames" });
    await waitFor(() => eventTexts(delta.texts, ch).length === 20, { what: "delta frames" });
    const sent = eventTexts(delta.texts, ch);
    const today = eventTexts(plain.texts, ch);
    expect(today).toHaveLength(20);
    expect(sent.filter((t) => t.startsWith('{"event":"pusher:delta"'))).toHaveLength(19);
    // The non-opted client got today's frames, and the delta client rebuilt exactly those.
    expect(today.every((t) => !t.includes("__delta_seq"))).toBe(true);
    expect(reconstruct(delta.texts, ch)).toEqual(today);

    const bytes = (ts: string[]) => ts.reduce((n, t) => n + Buffer.byteLength(t), 0);
    const ratio = bytes(sent) / bytes(today);
    console.info(
      `delta stream: ${bytes(sent)} of ${bytes(today)} bytes (ratio ${ratio.toFixed(3)})`,
    );
    expect(ratio).toBeLessThan(0.5);
  });

  it("falls back to a full frame when the delta is not smaller", async () => {
    const ch = "ticker-2";
    const a = await rawClient();
    await enableDelta(a.c);
    await subscribe(a.c, ch);
    await publish(ch, "a", "x");
    await publish(ch, "b", "y");
    const second = await a.c.next<PusherFrame>(isEvent("b", ch));
    expect(second.data).toBe("y");
    expect(eventTexts(a.texts, ch).every((t) => t.includes('"__delta_seq"'))).toBe(true);
  });

  it("applies to channels subscribed before the opt-in (Sockudo's client enables after subscribing)", async () => {
    const ch = "ticker-3";
    const a = await rawClient();
    const plain = await rawClient();
    await subscribe(a.c, ch);
    await subscribe(plain.c, ch);
    await enableDelta(a.c);
    for (let i = 0; i < 3; i++) await publish(ch, "price", tick(i));
    await waitFor(() => eventTexts(a.texts, ch).length === 3, { what: "delta frames" });
    await waitFor(() => eventTexts(plain.texts, ch).length === 3, { what: "plain frames" });
    expect(a.texts.filter((t) => t.startsWith('{"event":"pusher:delta"'))).toHaveLength(2);
    expect(reconstruct(a.texts, ch)).toEqual(eventTexts(plain.texts, ch));
  });

  it("starts over with a full frame after pusher:delta_sync_error", async () => {
    const ch = "ticker-4";
    const a = await rawClient();
    await enableDelta(a.c);
    await subscribe(a.c, ch);
    await publish(ch, "price", tick(0));
    await a.c.next<PusherFrame>(isEvent("price", ch));
    a.c.send({ event: "pusher:delta_sync_error", data: { channel: ch } });
    await publish(ch, "price", tick(1));
    const again = await a.c.next<PusherFrame>(isEvent("price", ch));
    expect(dataOf(again)).toEqual(tick(1));
  });

  it("cache channels: the cached event is the first full frame, live ones diff against it", async () => {
    const ch = "cache-ticker-5";
    await publish(ch, "price", tick(0));
    await publish(ch, "price", tick(1));
    const a = await rawClient();
    const plain = await rawClient();
    await enableDelta(a.c);
    await subscribe(a.c, ch);
    await subscribe(plain.c, ch);
    const cached = await a.c.next<PusherFrame>(isEvent("price", ch));
    expect(dataOf(cached)).toEqual(tick(1));
    await plain.c.next<PusherFrame>(isEvent("price", ch));
    await publish(ch, "price", tick(2));
    await a.c.next<PusherFrame>(isEvent("pusher:delta", ch));
    await plain.c.next<PusherFrame>(isEvent("price", ch));
    expect(reconstruct(a.texts, ch)).toEqual(eventTexts(plain.texts, ch));
  });

  it("refuses algorithms it cannot produce", async () => {
    const a = await rawClient();
    a.c.send({ event: "pusher:enable_delta_compression", data: { algorithms: ["xdelta3"] } });
    const err = await a.c.next<PusherFrame>(isEvent("pusher:error"));
    expect(err.data).toMatchObject({ message: expect.stringMatching(/fossil/) });
  });

  it("combines with a filter: deltas run over the filtered stream", async () => {
    const ch = "ticker-6";
    const a = await rawClient();
    await enableDelta(a.c);
    await subscribe(a.c, ch, { filter: { symbol: { eq: "BTC" } } });
    await publish(ch, "price", tick(0), { symbol: "BTC" });
    await publish(ch, "price", { ...tick(1), symbol: "ETH" }, { symbol: "ETH" });
    await publish(ch, "price", tick(2), { symbol: "BTC" });
    await a.c.next<PusherFrame>(isEvent("pusher:delta", ch));
    const frames = reconstruct(a.texts, ch).map((t) => dataOf(JSON.parse(t) as PusherFrame));
    expect(frames).toEqual([tick(0), tick(2)]);
  });
});
