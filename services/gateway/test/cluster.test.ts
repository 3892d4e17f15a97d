import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JetStreamEngine } from "../../../shared/src/engine/jetstream.js";
import { at } from "../../../shared/test/defined.js";
import { natsServerBinaries, startCluster, startNats } from "../../../shared/test/nats-harness.js";
import { waitFor } from "../../../shared/test/wait.js";
import { signRequest } from "../src/dialects/pusher/http-sign.js";
import { TEST_APP } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import {
  FAST_PRESENCE,
  spawnTidings,
  startTwoGateways,
  type TidingsProcess,
  type TwoGateways,
} from "./processes.js";
import type { TestClient } from "./ws-client.js";

const bodies = (c: TestClient, stream: string) =>
  c
    .all<Frame>(isType("event.new", (p) => p.stream_id === stream && !p.ephemeral))
    .map((f) => f.payload.body);

describe("two gateways on one NATS", () => {
  let cluster: TwoGateways;
  let g1: TidingsProcess;
  let g2: TidingsProcess;

  beforeAll(async () => {
    cluster = await startTwoGateways();
    ({ g1, g2 } = cluster);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("serves probes and metrics from gateways and from a presence replica alone", async () => {
    const { presence } = cluster;
    for (const p of [g1, g2, presence]) {
      expect((await fetch(p.http("/healthz"))).status).toBe(200);
      expect((await fetch(p.http("/readyz"))).status).toBe(200);
    }
    const metrics = await (await fetch(presence.http("/metrics"))).text();
    expect(metrics).toMatch(/tidings_presence_partitions_owned [1-9]/);
  });

  it("delivers what is published on one gateway to subscribers on the other, in order, once", async () => {
    const a = await heraldConnect(heraldUrl(g1.url, "alice", ["x1"]));
    const b = await heraldConnect(heraldUrl(g2.url, "bob", ["x1"]));
    await request(a, "subscribe", { stream_id: "x1" });
    await request(b, "subscribe", { stream_id: "x1" });
    const sent = Array.from({ length: 200 }, (_, i) => i);
    await Promise.all(
      sent.map((i) => request(b, "event.publish", { stream_id: "x1", type: "n", body: i })),
    );
    await waitFor(() => bodies(a, "x1").length >= 200, { what: "200 events on gateway 1" });
    const seqs = a.all<Frame>(isType("event.new")).map((f) => f.payload.seq as number);
    expect([...seqs].sort((p, q) => p - q)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(200);
    expect(new Set(bodies(a, "x1"))).toEqual(new Set(sent));
    a.close();
    b.close();
  });

  // Subscribes wait on presence and storage round trips, so on NATS a later request
  // can overtake an earlier one unless the dialect keeps them in order.
  it("applies back-to-back subscribes and unsubscribes in the order sent", async () => {
    const pub = await heraldConnect(heraldUrl(g1.url, "pub", ["order"]));
    const c = await heraldConnect(heraldUrl(g1.url, "fast", ["order"]));
    // Two subscribes in flight at once: both answered, and live events arrive once.
    c.send({ type: "subscribe", ref: "a", payload: { stream_id: "order" } });
    c.send({ type: "subscribe", ref: "b", payload: { stream_id: "order" } });
    expect((await c.next<Frame>((f) => f.ref === "a")).type).toBe("subscribed");
    expect((await c.next<Frame>((f) => f.ref === "b")).type).toBe("subscribed");
    await request(pub, "event.publish", { stream_id: "order", type: "n", body: 1 });
    await c.next<Frame>(isType("event.new", (p) => p.body === 1));
    // Subscribe then unsubscribe at once: the client ends unsubscribed.
    c.send({ type: "unsubscribe", payload: { stream_id: "order" } });
    c.send({ type: "subscribe", ref: "c", payload: { stream_id: "order" } });
    c.send({ type: "unsubscribe", payload: { stream_id: "order" } });
    await c.next<Frame>((f) => f.ref === "c");
    await request(c, "ping", {});
    await request(pub, "event.publish", { stream_id: "order", type: "n", body: 2 });
    await request(pub, "ping", {});
    expect((await request(c, "ping", {})).type).toBe("pong");
    expect(bodies(c, "order")).toEqual([1]);
    pub.close();
    c.close();
  });

  it("replays exactly what a client missed when it reconnects to the other gateway", async () => {
    const pub = await heraldConnect(heraldUrl(g2.url, "pub", ["x2"]));
    const c1 = await heraldConnect(heraldUrl(g1.url, "carol", ["x2"]));
    await request(c1, "subscribe", { stream_id: "x2" });
    for (let i = 0; i < 5; i++)
      await request(pub, "event.publish", { stream_id: "x2", type: "n", body: i });
    await waitFor(() => bodies(c1, "x2").length === 5);
    const last = at(c1.all<Frame>(isType("event.new")), -1).payload.seq as number;
    c1.close();
    await c1.waitClosed();
    for (let i = 5; i < 10; i++)
      await request(pub, "event.publish", { stream_id: "x2", type: "n", body: i });
    const c2 = await heraldConnect(heraldUrl(g2.url, "carol", ["x2"]));
    await request(c2, "subscribe", { stream_id: "x2", last_seq: last });
    await request(pub, "event.publish", { stream_id: "x2", type: "n", body: 10 });
    await waitFor(() => bodies(c2, "x2").includes(10));
    expect(bodies(c2, "x2")).toEqual([5, 6, 7, 8, 9, 10]);
    pub.close();
    c2.close();
  });

  it("dedupes a publish retried on another gateway with the same ref", async () => {
    const s = await heraldConnect(heraldUrl(g1.url, "sub", ["x3"]));
    await request(s, "subscribe", { stream_id: "x3" });
    const p1 = await heraldConnect(heraldUrl(g1.url, "dave", ["x3"]));
    const p2 = await heraldConnect(heraldUrl(g2.url, "dave", ["x3"]));
    p1.send({
      type: "event.publish",
      ref: "retry-1",
      payload: { stream_id: "x3", type: "n", body: "once" },
    });
    const first = await p1.next<Frame>((f) => f.ref === "retry-1");
    p2.send({
      type: "event.publish",
      ref: "retry-1",
      payload: { stream_id: "x3", type: "n", body: "once" },
    });
    const second = await p2.next<Frame>((f) => f.ref === "retry-1");
    expect(second.payload).toEqual(first.payload);
    await request(p2, "event.publish", { stream_id: "x3", type: "n", body: "marker" });
    await waitFor(() => bodies(s, "x3").includes("marker"));
    expect(bodies(s, "x3")).toEqual(["once", "marker"]);
    for (const c of [s, p1, p2]) c.close();
  });

  it("excludes only the sending connection from ephemeral events across gateways", async () => {
    const a = await heraldConnect(heraldUrl(g1.url, "erin", ["x4"]));
    const a2 = await heraldConnect(heraldUrl(g1.url, "erin", ["x4"]));
    const b = await heraldConnect(heraldUrl(g2.url, "finn", ["x4"]));
    for (const c of [a, a2, b]) await request(c, "subscribe", { stream_id: "x4" });
    a.send({ type: "event.trigger", payload: { stream_id: "x4", type: "poke", body: 1 } });
    for (const c of [a2, b])
      expect((await c.next<Frame>(isType("event.new"))).payload.ephemeral).toBe(true);
    await request(a, "event.publish", { stream_id: "x4", type: "n", body: "after" });
    await a.next<Frame>(isType("event.new", (p) => p.body === "after"));
    expect(a.all<Frame>(isType("event.new", (p) => p.ephemeral === true))).toEqual([]);
    for (const c of [a, a2, b]) c.close();
  });

  it("blocks a user on every gateway when the HTTP API on another is told to", async () => {
    const bob = await heraldConnect(heraldUrl(g1.url, "bob", ["xb"]));
    await request(bob, "subscribe", { stream_id: "xb" }, 20_000);
    const app = { ...TEST_APP, apiKeys: [], allowedOrigins: [], webhooks: [], limits: {} as never };
    const path = `/apps/${TEST_APP.id}/channels/xb/blocked_users`;
    const body = JSON.stringify({ user_id: "bob" });
    const query = signRequest(app, "POST", path, {}, body, Math.floor(Date.now() / 1000));
    expect((await fetch(g2.http(`${path}?${query}`), { method: "POST", body })).status).toBe(200);
    expect((await bob.next<Frame>(isType("error"))).payload.code).toBe("blocked");
    const later = await heraldConnect(heraldUrl(g2.url, "bob", ["xb"]));
    expect((await request(later, "subscribe", { stream_id: "xb" })).payload.code).toBe("blocked");
    bob.close();
    later.close();
  });

  // Presence and storage answer over the network, so auth takes round trips: a
  // client that starts sending the moment it sees auth_ok must be served in full.
  it("serves every frame a client sends right after auth_ok", async () => {
    const c = await heraldConnect(heraldUrl(g1.url, "eager", ["xe"]));
    for (let i = 0; i < 150; i++) c.send({ type: "ping", ref: `e${i}` });
    await c.next<Frame>((f) => f.ref === "e149");
    expect(c.all<Frame>(isType("pong"))).toHaveLength(150);
    expect(c.all<Frame>(isType("error"))).toEqual([]);
    c.close();
  });

  it("tracks members at user level across gateways", async () => {
    const stream = "presence-room";
    const a = await heraldConnect(heraldUrl(g1.url, "gina", [stream]));
    const sub = await request(a, "subscribe", { stream_id: stream });
    expect(sub.payload.members).toEqual([{ user_id: "gina", status: "online" }]);
    const b1 = await heraldConnect(heraldUrl(g1.url, "hal", [stream]));
    const b2 = await heraldConnect(heraldUrl(g2.url, "hal", [stream]));
    await request(b1, "subscribe", { stream_id: stream });
    expect((await a.next<Frame>(isType("member.joined"))).payload).toEqual({
      stream_id: stream,
      user_id: "hal",
    });
    const sub2 = await request(b2, "subscribe", { stream_id: stream });
    expect((sub2.payload.members as { user_id: string }[]).map((m) => m.user_id).sort()).toEqual([
      "gina",
      "hal",
    ]);
    b1.close();
    await b1.waitClosed();
    // hal is still there through b2: no member.left yet, proven by a later event arriving first.
    await request(b2, "event.publish", { stream_id: stream, type: "n", body: "still" });
    await a.next<Frame>(isType("event.new", (p) => p.body === "still"));
    expect(a.all<Frame>(isType("member.left"))).toEqual([]);
    b2.close();
    expect((await a.next<Frame>(isType("member.left"))).payload).toEqual({
      stream_id: stream,
      user_id: "hal",
    });
    expect(a.all<Frame>(isType("member.joined"))).toHaveLength(1);
    a.close();
  });
});

describe("faults", () => {
  it("a killed gateway's members leave within 15 s and its clients lose nothing on another gateway", async () => {
    await using nats = await startNats();
    const env = { NATS_URL: nats.url(0), ...FAST_PRESENCE };
    await using presence = await spawnTidings("presence", env);
    await using g1 = await spawnTidings("gateway", env);
    await using g2 = await spawnTidings("gateway", env);
    void presence;
    const stream = "presence-fault";
    const watcher = await heraldConnect(heraldUrl(g2.url, "watcher", [stream]));
    await request(watcher, "subscribe", { stream_id: stream });
    const victim = await heraldConnect(heraldUrl(g1.url, "victim", [stream]));
    await request(victim, "subscribe", { stream_id: stream });
    await watcher.next<Frame>(isType("member.joined", (p) => p.user_id === "victim"));
    const pub = await heraldConnect(heraldUrl(g2.url, "pub", [stream]));
    for (let i = 0; i < 3; i++)
      await request(pub, "event.publish", { stream_id: stream, type: "n", body: i });
    await waitFor(() => bodies(victim, stream).length === 3);
    const last = at(victim.all<Frame>(isType("event.new")), -1).payload.seq as number;

    const killedAt = Date.now();
    await g1.kill("SIGKILL");
    await victim.waitClosed();
    for (let i = 3; i < 6; i++)
      await request(pub, "event.publish", { stream_id: stream, type: "n", body: i });
    const left = await watcher.next<Frame>(
      isType("member.left", (p) => p.user_id === "victim"),
      15_000,
    );
    expect(left).toBeDefined();
    expect(Date.now() - killedAt).toBeLessThan(15_000);

    const again = await heraldConnect(heraldUrl(g2.url, "victim", [stream]));
    const sub = await request(again, "subscribe", { stream_id: stream, last_seq: last });
    // No ghost: the dead connection's membership is gone, the new one is the only "victim".
    expect((sub.payload.members as { user_id: string }[]).map((m) => m.user_id).sort()).toEqual([
      "victim",
      "watcher",
    ]);
    await waitFor(() => bodies(again, stream).length === 3);
    expect(bodies(again, stream)).toEqual([3, 4, 5]);
    for (const c of [watcher, pub, again]) c.close();
  });

  it("goes unready and fails publishes fast while NATS is down, then resumes live delivery", async () => {
    await using nats = await startNats();
    const env = { NATS_URL: nats.url(0), ...FAST_PRESENCE };
    await using g = await spawnTidings("all", env);
    const s = await heraldConnect(heraldUrl(g.url, "s", ["nd"]));
    await request(s, "subscribe", { stream_id: "nd" }, 20_000);
    await request(s, "event.publish", { stream_id: "nd", type: "n", body: "before" });
    expect((await fetch(g.http("/readyz"))).status).toBe(200);

    await nats.kill(0, "SIGKILL");
    await waitFor(async () => (await fetch(g.http("/readyz"))).status === 503, {
      what: "readyz 503",
    });
    const started = Date.now();
    const failed = await request(s, "event.publish", { stream_id: "nd", type: "n", body: "down" });
    expect(failed.payload.code).toBe("internal");
    expect(Date.now() - started).toBeLessThan(3000);

    await nats.restart(0);
    await waitFor(async () => (await fetch(g.http("/readyz"))).status === 200, {
      timeoutMs: 20_000,
      what: "readyz 200",
    });
    const ok = await request(
      s,
      "event.publish",
      { stream_id: "nd", type: "n", body: "after" },
      20_000,
    );
    expect(ok.type).toBe("event.ack");
    await waitFor(() => bodies(s, "nd").includes("after"), { timeoutMs: 20_000 });
    expect(bodies(s, "nd")).toEqual(["before", "after"]);
    s.close();
  });
});

describe.each(natsServerBinaries())("faults on a 3-node cluster, $label", ({ bin }) => {
  it.skipIf(!bin)(
    "kill -9 of the stream leader in a 3-node cluster loses no acknowledged event and duplicates none",
    async () => {
      await using nats = await startCluster(3, { bin: bin ?? undefined });
      const env = { NATS_URL: nats.urls.join(","), NATS_REPLICAS: "3", ...FAST_PRESENCE };
      // Presence first, so the gateways find its partitions owned when clients subscribe.
      await using presence = await spawnTidings("presence", env);
      void presence;
      await using g1 = await spawnTidings("gateway", {
        ...env,
        NATS_URL: `${nats.urls[0]},${nats.urls[1]}`,
      });
      await using g2 = await spawnTidings("gateway", {
        ...env,
        NATS_URL: `${nats.urls[2]},${nats.urls[1]}`,
      });
      const stream = "ha";
      const subs = await Promise.all([
        heraldConnect(heraldUrl(g1.url, "s1", [stream])),
        heraldConnect(heraldUrl(g2.url, "s2", [stream])),
      ]);
      for (const s of subs) await request(s, "subscribe", { stream_id: stream }, 20_000);
      const pubs = await Promise.all([
        heraldConnect(heraldUrl(g1.url, "p1", [stream])),
        heraldConnect(heraldUrl(g2.url, "p2", [stream])),
      ]);
      const acked = new Map<string, number>();
      let n = 0;
      const publishSome = async (count: number) => {
        await Promise.all(
          Array.from({ length: count }, async () => {
            const i = n++;
            const p = at(pubs, i % 2);
            // Retry with the same ref until acknowledged: the ref makes the retry idempotent,
            // so an attempt that was stored but whose ack was lost is not stored twice.
            const ref = `ha-${i}`;
            for (let attempt = 0; attempt < 60; attempt++) {
              p.send({
                type: "event.publish",
                ref,
                payload: { stream_id: stream, type: "n", body: i },
              });
              // Publishes stall for ~5-6 s while the stream elects a new leader.
              const r = await p.next<Frame>((f) => f.ref === ref, 30_000);
              if (r.type === "event.ack") return void acked.set(r.payload.event_id as string, i);
              if (r.payload.code !== "internal") throw new Error(JSON.stringify(r));
              await new Promise((res) => setTimeout(res, 250));
            }
            throw new Error(`publish ${i} never acknowledged`);
          }),
        );
      };
      await publishSome(50);
      const leader = await nats.streamLeader("TIDINGS_app-id");
      await Promise.all([publishSome(100), nats.kill(leader, "SIGKILL")]);
      await publishSome(50);
      expect(acked.size).toBe(200);
      for (const s of subs) {
        // A subscriber whose gateway had to reconnect replays from its last seq; here both stay
        // connected, so every acknowledged event must arrive live, gap-filled, once.
        await waitFor(() => s.all<Frame>(isType("event.new")).length >= 200, {
          timeoutMs: 30_000,
          what: "all acked events",
        });
        const ids = s.all<Frame>(isType("event.new")).map((f) => f.payload.event_id as string);
        expect(new Set(ids).size).toBe(ids.length);
        expect(new Set(ids)).toEqual(new Set(acked.keys()));
      }
      for (const c of [...subs, ...pubs]) c.close();
    },
  );

  // A follower that was paused is behind the stream leader while it catches up, and the
  // gateways' reads must not be served from it: every fetch and every replay equals what
  // was acknowledged, counted event by event.
  it.skipIf(!bin)(
    "serves fetches and replays through gateways exactly as acknowledged while a follower catches up",
    async () => {
      await using nats = await startCluster(3, { bin: bin ?? undefined });
      // The app stream first, so the follower to pause is known before anything connects.
      const admin = await JetStreamEngine.connect({ servers: nats.urls, replicas: 3 });
      const stream = `TIDINGS_${TEST_APP.id}`;
      const appLimits = { historyPerChannel: 1000, historyMaxAgeSec: 86_400, dedupeWindowSec: 120 };
      await admin.ensureApp(TEST_APP.id, appLimits);
      const leader = await nats.streamLeader(stream);
      const meta = await nats.metaLeader();
      const follower = [0, 1, 2].find((i) => i !== leader && i !== meta) ?? (leader + 1) % 3;
      await admin.close();
      // Nothing talks to the follower: a client on a frozen server would hang.
      const urls = nats.urls.filter((_, i) => i !== follower).join(",");
      const env = { NATS_URL: urls, NATS_REPLICAS: "3", ...FAST_PRESENCE };
      await using presence = await spawnTidings("presence", env);
      void presence;
      // One publisher sends 350 events in a burst: above the default per-connection rate.
      await using g = await spawnTidings("gateway", { ...env, TIDINGS_MAX_MESSAGE_RATE: "10000" });
      const filler = await JetStreamEngine.connect({ servers: urls, replicas: 3 });
      const bulk = "b".repeat(4000);
      const ch = "lagging";
      const pub = await heraldConnect(heraldUrl(g.url, "pub", [ch]));
      const acked: { seq: number; body: number }[] = [];
      const publish = async (count: number) => {
        for (let k = 0; k < count; k += 25) {
          await Promise.all(
            Array.from({ length: 25 }, async (_, j) => {
              const body = acked.length + k + j;
              // Bulk on another channel gives the paused follower more to catch up on.
              await filler.publish(TEST_APP.id, "bulk", { name: "b", data: bulk });
              const r = await request(
                pub,
                "event.publish",
                { stream_id: ch, type: "n", body },
                20_000,
              );
              if (r.type !== "event.ack") throw new Error(JSON.stringify(r));
              return { seq: r.payload.seq as number, body };
            }),
          ).then((rs) => acked.push(...rs));
        }
        acked.sort((a, b) => a.seq - b.seq);
      };
      try {
        await publish(50);
        // Connected and used before the pause: a first use reads KV, which a frozen
        // replica may be asked to answer.
        const readers = await Promise.all(
          Array.from({ length: 8 }, (_, i) => heraldConnect(heraldUrl(g.url, `reader${i}`, [ch]))),
        );
        for (const r of readers) await request(r, "events.fetch", { stream_id: ch, limit: 1 });
        nats.pause(follower);
        await publish(300);
        const mid = acked[100]?.seq ?? 0;
        const want = acked.filter((e) => e.seq > mid);
        nats.resume(follower);
        const events = (f: Frame) =>
          (f.payload.events as { seq: number; body: number }[]).map((e) => ({
            seq: e.seq,
            body: e.body,
          }));
        let rounds = 0;
        const fetches = async (reader: TestClient) => {
          const [all, newest, page] = await Promise.all([
            request(reader, "events.fetch", { stream_id: ch, after_seq: 0, limit: 1000 }),
            request(reader, "events.fetch", { stream_id: ch, limit: 1000 }),
            request(reader, "events.fetch", { stream_id: ch, after_seq: mid, limit: 20 }),
          ]);
          expect(events(all)).toEqual(acked);
          expect(events(newest)).toEqual(acked);
          expect(events(page)).toEqual(want.slice(0, 20));
          expect(page.payload.has_more).toBe(true);
        };
        // A reconnecting client's replay after last_seq: exactly the events after it.
        const replay = async (user: string) => {
          const replayer = await heraldConnect(heraldUrl(g.url, user, [ch]));
          await request(replayer, "subscribe", { stream_id: ch, last_seq: mid }, 20_000);
          await waitFor(() => replayer.all<Frame>(isType("event.new")).length >= want.length, {
            what: "the replay",
          });
          const replayed = replayer
            .all<Frame>(isType("event.new"))
            .map((f) => ({ seq: f.payload.seq as number, body: f.payload.body as number }));
          expect(replayed).toEqual(want);
          replayer.close();
        };
        // Many reads at once: each lands its consumer on a random replica.
        const readAll = async () => {
          await Promise.all([
            ...readers.map(fetches),
            replay(`replay${rounds}a`),
            replay(`replay${rounds}b`),
          ]);
          rounds++;
        };
        const leaderLast = await nats.replicaLastSeq(leader, stream);
        await waitFor(
          async () => {
            await readAll();
            const seen = await nats.replicaLastSeq(follower, stream);
            return rounds >= 3 && seen !== null && leaderLast !== null && seen >= leaderLast;
          },
          { timeoutMs: 40_000, intervalMs: 0, what: "the follower to catch up" },
        );
        for (const c of [pub, ...readers]) c.close();
      } finally {
        await filler.close();
      }
    },
  );
});
