/**
 * The SDK against two gateway processes on NATS: the gateway a client is on
 * dies (SIGKILL) while events flow and a publish is in flight.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTwoGateways, type TwoGateways } from "../../../services/gateway/test/processes.js";
import { waitFor } from "../../test/wait.js";
import type { HeraldEvent } from "../src/index.js";
import { client, closeClients, collect, unique } from "./helpers.js";

let cl: TwoGateways;
beforeAll(async () => {
  cl = await startTwoGateways();
}, 90_000);
afterEach(closeClients);
afterAll(async () => {
  await cl?.stop();
});

describe("two gateways on NATS", () => {
  it("survives a kill -9 of its gateway: every event once and in order, its publish stored once, unacked at-least-once events again", async () => {
    const room = unique("room");
    const urls = [cl.g1.url("/ws"), cl.g2.url("/ws")];
    // Both start on g1 (the first URL), then move to g2 when g1 dies.
    const plain = client(urls, unique("plain"), [room]);
    const alo = client(urls, unique("alo"), [room]);
    const s = plain.subscribe(room);
    const seen = collect(s);
    const a = alo.subscribe(room, { delivery: "at_least_once" });
    const handled: unknown[] = [];
    const failed: unknown[] = [];
    a.on("event", async (e) => {
      // One failure before the kill: that event stays unacked and must come again.
      if (e.body === 5 && failed.length === 0) {
        failed.push(e.body);
        throw new Error("handler failed");
      }
      handled.push(e.body);
    });
    a.on("error", () => {});
    await Promise.all([s.ready, a.ready]);
    expect(plain.info?.url).toBe(urls[0]);
    expect(alo.info?.url).toBe(urls[0]);

    const pub = client(cl.g2.url("/ws"), unique("pub"), [room]);
    const total = 60;
    const flow = (async () => {
      for (let i = 1; i <= total; i++) await pub.publish(room, "n", i);
    })();
    await waitFor(() => seen.length >= 20 && handled.length >= 10, { what: "events flowing" });
    // In flight when the gateway dies: its ack may be lost, so the SDK resends it with the same ref.
    const mine = plain.publish(room, "mine", { text: "sent as the gateway died" });
    await cl.g1.kill("SIGKILL");
    await flow;
    const ack = await mine;
    expect(ack.event_id).toMatch(/^evt_/);

    const isN = (e: HeraldEvent) => e.type === "n";
    await waitFor(() => seen.filter(isN).length >= total && seen.some((e) => e.type === "mine"), {
      timeoutMs: 30_000,
      what: `${total} events and the own publish after the failover`,
    });
    expect(plain.info?.url).toBe(urls[1]);
    // Counted one by one: each of 1..total exactly once, in order.
    expect(seen.filter(isN).map((e) => e.body)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    const seqs = seen.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(seen.filter((e) => e.type === "mine").map((e) => e.event_id)).toEqual([ack.event_id]);

    // Stored once: history holds the own publish once.
    const stored: HeraldEvent[] = [];
    for await (const page of s.history({ direction: "forward", pageSize: 100 }))
      stored.push(...page);
    expect(stored.filter((e) => e.type === "mine").map((e) => e.event_id)).toEqual([ack.event_id]);
    expect(stored.filter(isN)).toHaveLength(total);

    // At-least-once: event 5 failed before the kill and came again on g2; every other once.
    await waitFor(() => handled.length >= total + 1, {
      timeoutMs: 30_000,
      what: "every event handled on the at-least-once stream",
    });
    expect(alo.info?.url).toBe(urls[1]);
    expect(failed).toEqual([5]);
    const bodies = handled.filter((b) => typeof b === "number") as number[];
    expect([...bodies].sort((x, y) => x - y)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    expect(handled.filter((b) => typeof b !== "number")).toEqual([
      { text: "sent as the gateway died" },
    ]);
  });
});
