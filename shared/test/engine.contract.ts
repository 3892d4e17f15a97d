import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine, PublishResult } from "../src/engine/engine.js";
import { type Delivery, type Signal, type StoredEvent, seqOfEventId } from "../src/model.js";
import { at, expectDefined } from "./defined.js";
import { waitFor } from "./wait.js";

/**
 * The engine contract, run unchanged by every implementation
 * (`memory.test.ts`, `jetstream.test.ts`). Each case says why it matters.
 */
export function describeEngineContract(
  name: string,
  makeEngine: () => Promise<{ engine: Engine; dispose: () => Promise<void> }>,
) {
  describe(`engine contract: ${name}`, () => {
    let engine: Engine;
    let dispose: () => Promise<void>;
    let n = 0;
    // Every case gets its own app so cases cannot see each other's events.
    const freshApp = async (
      limits = { historyPerChannel: 100, historyMaxAgeSec: 0, dedupeWindowSec: 60 },
    ) => {
      const app = `app${++n}x${Math.random().toString(36).slice(2, 8)}`;
      await engine.ensureApp(app, limits);
      return app;
    };
    const collect = (app: string, channel: string) => {
      const got: Delivery[] = [];
      const sub = engine.subscribe(app, channel, (d) => got.push(d));
      const events = () =>
        got.flatMap((d) => (d.type === "event" ? [d.event] : ([] as StoredEvent[])));
      const signals = () =>
        got.flatMap((d) => (d.type === "signal" ? [d.signal] : ([] as Signal[])));
      return { sub, events, signals };
    };

    beforeAll(async () => {
      ({ engine, dispose } = await makeEngine());
    });
    afterAll(async () => {
      await dispose?.();
    });

    // Clients resume by seq, so seq must grow within a channel and ids must resolve back to it.
    it("assigns increasing seqs per channel and ids that encode them", async () => {
      const app = await freshApp();
      const a1 = await engine.publish(app, "a", { name: "x", data: 1 });
      const b1 = await engine.publish(app, "b", { name: "x", data: 2 });
      const a2 = await engine.publish(app, "a", { name: "x", data: 3 });
      expect(a2.seq).toBeGreaterThan(a1.seq);
      expect(b1.seq).not.toBe(a1.seq);
      expect(seqOfEventId(a2.id)).toBe(a2.seq);
      expect(a1.duplicate).toBe(false);
      expect(await engine.lastSeq(app, "a")).toBe(a2.seq);
      expect(await engine.lastSeq(app, "never")).toBe(0);
    });

    // A retried publish (lost ack, reconnect) must not store or deliver the event twice.
    it("dedupes publishes that share an idempotency key", async () => {
      const app = await freshApp();
      const live = collect(app, "c");
      await live.sub.ready;
      const first = await engine.publish(
        app,
        "c",
        { name: "x", data: "one" },
        { idempotencyKey: "k1" },
      );
      const again = await engine.publish(
        app,
        "c",
        { name: "x", data: "two" },
        { idempotencyKey: "k1" },
      );
      const other = await engine.publish(
        app,
        "c",
        { name: "x", data: "three" },
        { idempotencyKey: "k2" },
      );
      expect(again).toMatchObject({ seq: first.seq, id: first.id, duplicate: true });
      expect(other.seq).toBeGreaterThan(first.seq);
      const page = await engine.history(app, "c", { afterSeq: 0, limit: 10 });
      expect(page.events.map((e) => e.data)).toEqual(["one", "three"]);
      await waitFor(() => live.events().length === 2);
      expect(live.events().map((e) => e.data)).toEqual(["one", "three"]);
      live.sub.close();
    });

    // Keys come from clients (Herald refs, HTTP bodies): a key that merely looks
    // like another (spaces, line breaks, long or non-ASCII) must not swallow its
    // publish as a duplicate, and apps never share keys.
    it("keeps every distinct idempotency key string apart, within an app only", async () => {
      const app = await freshApp();
      const other = await freshApp();
      const keys = ["k", " k", "k ", "k\t", "a\r\nb", "a\nb", "", "x".repeat(64), "x".repeat(65)];
      const first: PublishResult[] = [];
      for (const [i, key] of keys.entries()) {
        first.push(await engine.publish(app, "c", { name: "x", data: i }, { idempotencyKey: key }));
      }
      expect(first.map((r) => r.duplicate)).toEqual(keys.map(() => false));
      for (const [i, key] of keys.entries()) {
        const again = await engine.publish(
          app,
          "c",
          { name: "x", data: -1 },
          { idempotencyKey: key },
        );
        expect(again, JSON.stringify(key)).toMatchObject({ seq: first[i]?.seq, duplicate: true });
      }
      const page = await engine.history(app, "c", { afterSeq: 0, limit: 100 });
      expect(page.events.map((e) => e.data)).toEqual(keys.map((_, i) => i));
      const elsewhere = await engine.publish(
        other,
        "c",
        { name: "x", data: 0 },
        { idempotencyKey: "k" },
      );
      expect(elsewhere.duplicate).toBe(false);
    });

    // A duplicate answer names the first event; one on another channel would be
    // acked with a seq that channel never had, and the publish would be lost.
    it("keeps the same idempotency key on two channels apart", async () => {
      const app = await freshApp();
      const liveA = collect(app, "a");
      const liveB = collect(app, "b");
      await Promise.all([liveA.sub.ready, liveB.sub.ready]);
      const a = await engine.publish(app, "a", { name: "x", data: "a" }, { idempotencyKey: "k" });
      const b = await engine.publish(app, "b", { name: "x", data: "b" }, { idempotencyKey: "k" });
      expect(b.duplicate).toBe(false);
      expect(b.seq).not.toBe(a.seq);
      const again = await engine.publish(
        app,
        "b",
        { name: "x", data: "b" },
        { idempotencyKey: "k" },
      );
      expect(again).toMatchObject({ seq: b.seq, duplicate: true });
      expect((await engine.history(app, "b", { afterSeq: 0, limit: 10 })).events).toHaveLength(1);
      await waitFor(() => liveA.events().length === 1 && liveB.events().length === 1);
      expect(liveB.events().map((e) => e.data)).toEqual(["b"]);
      liveA.sub.close();
      liveB.sub.close();
    });

    // Live delivery is the fan-out path: every event, in order, once, with all its fields.
    it("delivers stored events live, in seq order, each once, with every field", async () => {
      const app = await freshApp();
      const live = collect(app, "room.1");
      const other = collect(app, "room.2");
      await Promise.all([live.sub.ready, other.sub.ready]);
      const results = [];
      for (let i = 0; i < 50; i++) {
        results.push(
          await engine.publish(app, "room.1", {
            name: "msg",
            data: { i, text: "héllo" },
            meta: { m: true },
            userId: "u1",
            tags: { team: "home", kind: "goal" },
            excludeConnectionId: "1.2",
          }),
        );
      }
      await waitFor(() => live.events().length === 50);
      const events = live.events();
      expect(events.map((e) => e.seq)).toEqual(results.map((r) => r.seq));
      expect(events[0]).toMatchObject({
        channel: "room.1",
        name: "msg",
        data: { i: 0, text: "héllo" },
        meta: { m: true },
        userId: "u1",
        tags: { team: "home", kind: "goal" },
        excludeConnectionId: "1.2",
        id: at(results, 0).id,
        time: at(results, 0).time,
      });
      expect(other.events()).toEqual([]);
      // Tags (Sockudo filters) must survive storage too: cache channels and replay read it back.
      const stored = (await engine.history(app, "room.1", { limit: 1 })).events[0];
      expect(stored?.tags).toEqual({ team: "home", kind: "goal" });
      live.sub.close();
      other.sub.close();
    });

    // The gateway goes live at `ready`'s seq without reading the position
    // again: a seq too low would deliver events twice after a replay, one too
    // high would skip events stored after the subscribe.
    it("resolves ready with the seq live delivery starts after", async () => {
      const app = await freshApp();
      const early = collect(app, "r");
      expect(await early.sub.ready).toBe(0);
      const first = await engine.publish(app, "r", { name: "x", data: 1 });
      await engine.publish(app, "noise", { name: "x", data: 0 });
      await waitFor(() => early.events().length === 1);
      const second = await engine.publish(app, "r", { name: "x", data: 2 });
      // Joining a channel this process already follows: its second event may
      // still be on its way, and then the joiner may take it live (ready
      // below it) or as history (ready at it), but never both nor neither.
      const joined = collect(app, "r");
      const joinedAt = await joined.sub.ready;
      expect(joinedAt).toBeGreaterThanOrEqual(first.seq);
      expect(joinedAt).toBeLessThanOrEqual(second.seq);
      const third = await engine.publish(app, "r", { name: "x", data: 3 });
      const expected = [second.seq, third.seq].filter((seq) => seq > joinedAt);
      await waitFor(
        () => joined.events().length === expected.length && early.events().length === 3,
      );
      expect(joined.events().map((e) => e.seq)).toEqual(expected);
      expect(early.events().map((e) => e.seq)).toEqual([first.seq, second.seq, third.seq]);
      early.sub.close();
      joined.sub.close();
      // Subscribing afresh to a channel with history.
      const fresh = collect(app, "r");
      expect(await fresh.sub.ready).toBe(third.seq);
      const fourth = await engine.publish(app, "r", { name: "x", data: 4 });
      await waitFor(() => fresh.events().length === 1);
      expect(fresh.events().map((e) => e.seq)).toEqual([fourth.seq]);
      fresh.sub.close();
    });

    // Unsubscribed gateways must stop receiving (and stop costing) deliveries.
    it("stops delivering after close", async () => {
      const app = await freshApp();
      const a = collect(app, "c");
      const b = collect(app, "c");
      await Promise.all([a.sub.ready, b.sub.ready]);
      a.sub.close();
      await engine.publish(app, "c", { name: "x", data: 1 });
      await waitFor(() => b.events().length === 1);
      expect(a.events()).toEqual([]);
      b.sub.close();
    });

    // Signals (typing, triggers, members) are live-only: delivered to subscribers, never stored.
    it("fans signals out without storing them", async () => {
      const app = await freshApp();
      const live = collect(app, "s");
      await live.sub.ready;
      engine.signal(app, "s", {
        kind: "transient",
        name: "t",
        data: { a: 1 },
        userId: "u",
        excludeConnectionId: "1.1",
      });
      engine.signal(app, "s", {
        kind: "typing",
        userId: "u",
        active: true,
        excludeConnectionId: "1.1",
      });
      await waitFor(() => live.signals().length === 2);
      expect(live.signals()[0]).toEqual({
        kind: "transient",
        name: "t",
        data: { a: 1 },
        userId: "u",
        excludeConnectionId: "1.1",
      });
      expect(await engine.lastSeq(app, "s")).toBe(0);
      live.sub.close();
    });

    // Watchlists, terminate and server-to-user events are addressed to a user, not a channel.
    it("delivers user signals to that user's subscribers only", async () => {
      const app = await freshApp();
      const alice: Signal[] = [];
      const bob: Signal[] = [];
      const sa = engine.subscribeUser(app, "alice", (s) => alice.push(s));
      const sb = engine.subscribeUser(app, "bob.x y", (s) => bob.push(s));
      await Promise.all([sa.ready, sb.ready]);
      engine.signalUser(app, "bob.x y", { kind: "terminate" });
      engine.signalUser(app, "alice", { kind: "watch", userId: "bob", online: true });
      await waitFor(() => alice.length === 1 && bob.length === 1);
      expect(alice).toEqual([{ kind: "watch", userId: "bob", online: true }]);
      expect(bob).toEqual([{ kind: "terminate" }]);
      sa.close();
      sb.close();
    });

    // Replay after reconnect (last_seq) and paging both rest on history.
    it("pages history forward from a seq and backward from the newest", async () => {
      const app = await freshApp();
      const seqs: number[] = [];
      for (let i = 0; i < 12; i++) {
        seqs.push((await engine.publish(app, "h", { name: "n", data: i })).seq);
        await engine.publish(app, "noise", { name: "n", data: i });
      }
      const fwd = await engine.history(app, "h", { afterSeq: seqs[3], limit: 5 });
      expect(fwd.events.map((e) => e.data)).toEqual([4, 5, 6, 7, 8]);
      expect(fwd.hasMore).toBe(true);
      expect(fwd.truncated).toBe(false);
      const tail = await engine.history(app, "h", { afterSeq: seqs[8], limit: 5 });
      expect(tail.events.map((e) => e.data)).toEqual([9, 10, 11]);
      expect(tail.hasMore).toBe(false);
      const newest = await engine.history(app, "h", { limit: 4 });
      expect(newest.events.map((e) => e.data)).toEqual([8, 9, 10, 11]);
      expect(newest.hasMore).toBe(true);
      const before = await engine.history(app, "h", { beforeSeq: seqs[2], limit: 4 });
      expect(before.events.map((e) => e.data)).toEqual([0, 1]);
      expect(before.hasMore).toBe(false);
      const all = await engine.history(app, "h", { limit: 100 });
      expect(all.events).toHaveLength(12);
      expect(all.hasMore).toBe(false);
      expect((await engine.history(app, "empty", { limit: 10 })).events).toEqual([]);
    });

    // Replay pages until hasMore is false: an off-by-one at the boundary either
    // stops a replay one page early (a gap) or asks for an empty page forever.
    it("reports hasMore exactly at page boundaries", async () => {
      const app = await freshApp();
      const seqs: number[] = [];
      for (let i = 0; i < 6; i++) {
        seqs.push((await engine.publish(app, "b", { name: "n", data: i })).seq);
        await engine.publish(app, "noise", { name: "n", data: i });
      }
      const page = (q: { afterSeq?: number; beforeSeq?: number; limit: number }) =>
        engine.history(app, "b", q);
      const exact = await page({ afterSeq: seqs[1], limit: 4 });
      expect(exact.events.map((e) => e.data)).toEqual([2, 3, 4, 5]);
      expect(exact.hasMore).toBe(false);
      expect((await page({ afterSeq: seqs[1], limit: 3 })).hasMore).toBe(true);
      expect(await page({ afterSeq: seqs[5], limit: 3 })).toEqual({
        events: [],
        hasMore: false,
        truncated: false,
      });
      expect((await page({ afterSeq: seqs[1], limit: 0 })).hasMore).toBe(true);
      const older = await page({ beforeSeq: seqs[4], limit: 4 });
      expect(older.events.map((e) => e.data)).toEqual([0, 1, 2, 3]);
      expect(older.hasMore).toBe(false);
      expect((await page({ beforeSeq: seqs[4], limit: 3 })).hasMore).toBe(true);
      expect((await page({ limit: 6 })).hasMore).toBe(false);
      expect((await page({ beforeSeq: seqs[0], limit: 3 })).events).toEqual([]);
      // Paging forward from 0 by the pages a replay uses visits every event once.
      const seen: number[] = [];
      for (let after = 0, more = true; more; ) {
        const p = await page({ afterSeq: after, limit: 2 });
        seen.push(...p.events.map((e) => e.seq));
        after = p.events.at(-1)?.seq ?? after;
        more = p.hasMore;
      }
      expect(seen).toEqual(seqs);
    });

    // A client whose last_seq fell out of history must be told it missed events.
    it("keeps only historyPerChannel events per channel and reports truncation", async () => {
      const app = await freshApp({
        historyPerChannel: 3,
        historyMaxAgeSec: 0,
        dedupeWindowSec: 60,
      });
      const seqs: number[] = [];
      for (let i = 0; i < 6; i++)
        seqs.push((await engine.publish(app, "t", { name: "n", data: i })).seq);
      await engine.publish(app, "u", { name: "n", data: "other" });
      const page = await engine.history(app, "t", { afterSeq: 0, limit: 10 });
      expect(page.events.map((e) => e.data)).toEqual([3, 4, 5]);
      expect(page.truncated).toBe(true);
      const recent = await engine.history(app, "t", { afterSeq: seqs[3], limit: 10 });
      expect(recent.events.map((e) => e.data)).toEqual([4, 5]);
      expect(recent.truncated).toBe(false);
      expect((await engine.history(app, "u", { afterSeq: 0, limit: 10 })).truncated).toBe(false);
    });

    // Reactions and at-least-once acks look events up by id; the channel must match.
    it("gets one event by seq within its channel only", async () => {
      const app = await freshApp();
      const r = await engine.publish(app, "g", { name: "n", data: { v: 1 } });
      expect(await engine.getEvent(app, "g", r.seq)).toMatchObject({ seq: r.seq, data: { v: 1 } });
      expect(await engine.getEvent(app, "other", r.seq)).toBeNull();
      expect(await engine.getEvent(app, "g", r.seq + 1000)).toBeNull();
    });

    // Cursors, acks and reactions rely on CAS to stay correct under concurrent gateways.
    it("provides a KV store with create, CAS update, delete and prefix listing", async () => {
      const app = await freshApp();
      const kv = engine.kv(app, "cursors");
      expect(await kv.get("user.1/room@x")).toBeNull();
      const r1 = await kv.create("user.1/room@x", { seq: 1 });
      expect(r1).not.toBeNull();
      expect(await kv.create("user.1/room@x", { seq: 2 })).toBeNull();
      const r2 = await kv.update("user.1/room@x", { seq: 3 }, expectDefined(r1));
      expect(r2).not.toBeNull();
      expect(await kv.update("user.1/room@x", { seq: 4 }, expectDefined(r1))).toBeNull();
      expect(await kv.get("user.1/room@x")).toEqual({ value: { seq: 3 }, revision: r2 });
      await kv.put("user.2/room@x", [1, "two"]);
      expect((await kv.keys("user.")).sort()).toEqual(["user.1/room@x", "user.2/room@x"]);
      await kv.delete("user.1/room@x");
      expect(await kv.get("user.1/room@x")).toBeNull();
      expect(await kv.keys("user.1")).toEqual([]);
      expect(await kv.create("user.1/room@x", { seq: 9 })).not.toBeNull();
      // Buckets and apps are isolated from each other.
      expect(await engine.kv(app, "acks").get("user.2/room@x")).toBeNull();
      const app2 = await freshApp();
      expect(await engine.kv(app2, "cursors").get("user.2/room@x")).toBeNull();
    });

    // Channel names from clients contain characters NATS subjects cannot hold.
    it("keeps awkward channel names apart", async () => {
      const app = await freshApp();
      const names = ["a.b", "a_b", "a-b", "a@b,c;d=e", "presence-room#cache", "x*", "x>"];
      for (const [i, name] of names.entries())
        await engine.publish(app, name, { name: "n", data: i });
      for (const [i, name] of names.entries()) {
        const page = await engine.history(app, name, { limit: 10 });
        expect(page.events.map((e) => [e.channel, e.data])).toEqual([[name, i]]);
      }
    });

    it("reports readiness", () => {
      expect(engine.isReady()).toBe(true);
    });
  });
}
