import { describe, expect, it } from "vitest";
import { expectDefined } from "../../../shared/test/defined.js";
import { startCluster } from "../../../shared/test/nats-harness.js";
import { tcpProxy } from "../../../shared/test/tcp-proxy.js";
import { waitFor } from "../../../shared/test/wait.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { FAST_PRESENCE, spawnTidings, type TidingsProcess } from "./processes.js";
import type { TestClient } from "./ws-client.js";

const CHANNELS = 100;
const PER_CONNECTION = 25;
/** Herald's close code asking a client to reconnect and replay (also used when draining). */
const RECONNECT = 1012;

interface Watcher {
  gateway: "g1" | "g2";
  streams: string[];
  client: TestClient;
  /** Per stream: the seq `subscribed` reported, so a replay asks for exactly what came later. */
  subscribedAt: Map<string, number>;
}

async function watch(g: TidingsProcess, name: "g1" | "g2", streams: string[], user: string) {
  const client = await heraldConnect(heraldUrl(g.url, user, streams));
  const subscribedAt = new Map<string, number>();
  await Promise.all(
    streams.map(async (stream) => {
      const r = await request(client, "subscribe", { stream_id: stream }, 20_000);
      if (r.type !== "subscribed") throw new Error(`subscribe ${stream}: ${JSON.stringify(r)}`);
      subscribedAt.set(stream, r.payload.seq as number);
    }),
  );
  return { gateway: name, streams, client, subscribedAt } satisfies Watcher;
}

const liveIds = (c: TestClient, stream: string) =>
  new Set(
    c
      .all<Frame>(isType("event.new", (p) => p.stream_id === stream))
      .map((f) => f.payload.event_id as string),
  );

describe("live delivery when NATS fails", () => {
  // Issue 9: with the stream leader and one gateway's NATS link killed, acked
  // events never reached live subscribers and nothing said so. Each event
  // must reach each subscriber live, or the subscriber must be closed with the
  // reconnect code, after which a replay from its last seq brings the event.
  it("gets every acknowledged event to every live subscriber, or closes it to replay", async () => {
    await using nats = await startCluster(3);
    const env = {
      NATS_REPLICAS: "3",
      ...FAST_PRESENCE,
      // Short bounds keep the test quick; the defaults only scale the waits.
      TIDINGS_LIVE_CHECK_MS: "1000",
      TIDINGS_LIVE_GAP_MS: "8000",
    };
    const all = nats.urls.join(",");
    await using presence = await spawnTidings("presence", { ...env, NATS_URL: all });
    void presence;
    await using g1 = await spawnTidings("gateway", { ...env, NATS_URL: all });
    const leader = await nats.streamLeader("TIDINGS_app-id");
    // g2 reaches one surviving node through a proxy that will go dead.
    const other = expectDefined(
      [0, 1, 2].find((i) => i !== leader),
      "a node that does not lead",
    );
    await using proxy = await tcpProxy(Number(new URL(nats.url(other)).port));
    await using g2 = await spawnTidings("gateway", { ...env, NATS_URL: proxy.url });

    const streams = Array.from({ length: CHANNELS }, (_, i) => `lf-${i}`);
    const groups = Array.from({ length: CHANNELS / PER_CONNECTION }, (_, i) =>
      streams.slice(i * PER_CONNECTION, (i + 1) * PER_CONNECTION),
    );
    const watchers = await Promise.all([
      ...groups.map((s, i) => watch(g1, "g1", s, `w1-${i}`)),
      ...groups.map((s, i) => watch(g2, "g2", s, `w2-${i}`)),
    ]);
    const pub = await heraldConnect(heraldUrl(g1.url, "lf-pub", streams));

    await Promise.all([nats.kill(leader, "SIGKILL"), proxy.blackhole()]);
    // One event per channel, each retried with its ref until acknowledged:
    // publishes stall while the stream elects a new leader.
    const acked = new Map<string, string>();
    await Promise.all(
      streams.map(async (stream) => {
        const ref = `lf-${stream}`;
        for (let attempt = 0; attempt < 120; attempt++) {
          pub.send({
            type: "event.publish",
            ref,
            payload: { stream_id: stream, type: "n", body: 1 },
          });
          const r = await pub.next<Frame>((f) => f.ref === ref, 30_000);
          if (r.type === "event.ack") return void acked.set(stream, r.payload.event_id as string);
          if (r.payload.code !== "internal") throw new Error(JSON.stringify(r));
          await new Promise((res) => setTimeout(res, 250));
        }
        throw new Error(`publish on ${stream} never acknowledged`);
      }),
    );
    expect(acked.size).toBe(CHANNELS);
    const ackOf = (stream: string) => expectDefined(acked.get(stream), `the ack of ${stream}`);

    // Count one by one: each (subscriber, channel) pair ends up delivered or told.
    const outcome = (w: Watcher, stream: string) => {
      if (liveIds(w.client, stream).has(ackOf(stream))) return "live";
      if (w.client.closed?.code === RECONNECT) return "told";
      return "waiting";
    };
    const pairs = watchers.flatMap((w) => w.streams.map((stream) => ({ w, stream })));
    await waitFor(() => pairs.every(({ w, stream }) => outcome(w, stream) !== "waiting"), {
      timeoutMs: 45_000,
      intervalMs: 50,
      what: "every subscriber to get its events or be told",
    });
    const counts = { live: 0, told: 0 };
    for (const { w, stream } of pairs) counts[outcome(w, stream) as "live" | "told"]++;
    expect(counts.live + counts.told).toBe(pairs.length);
    // g2 could deliver nothing through a dead link: every one of its subscribers was told.
    for (const w of watchers.filter((x) => x.gateway === "g2"))
      expect(w.client.closed?.code).toBe(RECONNECT);

    // Told subscribers replay from where they were and get exactly what they missed
    // (with the killed node back: replays read through consumers it may host).
    await nats.restart(leader);
    // A restarted replica catches up before its reads are whole (a history read
    // may be served there); wait until history shows every event, then replay.
    const reader = await heraldConnect(heraldUrl(g1.url, "lf-reader", streams));
    for (const stream of streams) {
      await waitFor(
        async () => {
          const r = await request(
            reader,
            "events.fetch",
            { stream_id: stream, after_seq: 0 },
            20_000,
          );
          const events = (r.payload.events ?? []) as { event_id: string }[];
          return events.some((e) => e.event_id === acked.get(stream));
        },
        { timeoutMs: 20_000, intervalMs: 200, what: `${stream}'s event in history` },
      );
    }
    reader.close();
    for (const w of watchers.filter((x) => x.client.closed)) {
      const again = await heraldConnect(heraldUrl(g1.url, `${w.gateway}-again`, w.streams));
      for (const stream of w.streams) {
        // `internal` means retry (the cluster may still be settling), as a client does.
        let r: Frame | undefined;
        for (let attempt = 0; attempt < 40 && r?.type !== "subscribed"; attempt++) {
          if (r) await new Promise((res) => setTimeout(res, 250));
          r = await request(
            again,
            "subscribe",
            { stream_id: stream, last_seq: w.subscribedAt.get(stream) },
            20_000,
          );
          if (r.type !== "subscribed" && r.payload.code !== "internal")
            throw new Error(JSON.stringify(r));
        }
        expect(r?.type).toBe("subscribed");
        await waitFor(() => liveIds(again, stream).has(ackOf(stream)), {
          timeoutMs: 20_000,
          what: `the replay of ${stream} (${JSON.stringify(again.frames.slice(-3))})`,
        });
        // The replay holds only the one event, whether or not it had arrived live.
        expect([...liveIds(again, stream)]).toEqual([acked.get(stream)]);
      }
      again.close();
    }

    const closes = async (g: TidingsProcess) => {
      const text = await (await fetch(g.http("/metrics"))).text();
      return [...text.matchAll(/^tidings_live_gap_closes_total\{[^}]*\} (\d+)/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    };
    expect(await closes(g2)).toBe(groups.length);
    expect(g2.output()).toMatch(/live events could not be delivered in time/);
    for (const w of watchers) if (!w.client.closed) w.client.close();
    pub.close();
  }, 120_000);
});
