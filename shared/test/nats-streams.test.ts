import { JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addOrUpdateStream, createOrOpenKv } from "../src/nats/streams.js";
import { type NatsHandle, startNats } from "./nats-harness.js";

// Gateways and presence replicas start together and each creates the streams
// and buckets it needs. On nats-server 2.9 the loser of a concurrent create is
// sometimes told "subjects overlap" (10065) instead of being given the stream;
// that failed a gateway's start in CI. Without the retry in streams.ts these
// rounds fail most runs (8 connections x 5 names x 40 rounds).
const CREATORS = 8;
const NAMES = 5;
const ROUNDS = 40;

let nats: NatsHandle;
let conns: NatsConnection[];
beforeAll(async () => {
  nats = await startNats();
  conns = await Promise.all(
    Array.from({ length: CREATORS }, () => connect({ servers: nats.url(0) })),
  );
});
afterAll(async () => {
  await Promise.all((conns ?? []).map((nc) => nc.close()));
  await nats?.stop();
});

describe("concurrent stream and bucket creation", () => {
  it("every concurrent creator of a KV bucket gets it", async () => {
    const kvms = conns.map((nc) => new Kvm(nc));
    for (let round = 0; round < ROUNDS; round++) {
      const names = Array.from({ length: NAMES }, (_, i) => `kv_r${round}_${i}`);
      const opened = await Promise.all(
        names.flatMap((name) =>
          kvms.map((kvm) => createOrOpenKv(kvm, name, { history: 1, replicas: 1 })),
        ),
      );
      // They are one bucket: what one creator puts, another reads.
      await opened[0]?.put("k", "v");
      expect((await opened[CREATORS - 1]?.get("k"))?.string()).toBe("v");
    }
  });

  it("every concurrent creator of a stream gets it, with the config it asked for", async () => {
    const jsms = await Promise.all(conns.map((nc) => jetstreamManager(nc)));
    for (let round = 0; round < ROUNDS; round++) {
      const names = Array.from({ length: NAMES }, (_, i) => `S_r${round}_${i}`);
      await Promise.all(
        names.flatMap((name) =>
          jsms.map((jsm) =>
            addOrUpdateStream(jsm, { name, subjects: [`${name}.>`], max_msgs: 100 }),
          ),
        ),
      );
    }
    const info = await jsms[0]?.streams.info(`S_r0_0`);
    expect(info?.config.max_msgs).toBe(100);
    expect(info?.config.subjects).toEqual(["S_r0_0.>"]);
  });

  it("updates an existing stream to new settings", async () => {
    const jsm = await jetstreamManager(conns[0] as NatsConnection);
    await addOrUpdateStream(jsm, { name: "UPD", subjects: ["upd.>"], max_msgs: 10 });
    await addOrUpdateStream(jsm, { name: "UPD", subjects: ["upd.>"], max_msgs: 20 });
    expect((await jsm.streams.info("UPD")).config.max_msgs).toBe(20);
  });

  it("still refuses subjects another stream (another name) holds", async () => {
    const jsm = await jetstreamManager(conns[0] as NatsConnection);
    await jsm.streams.add({ name: "FOREIGN", subjects: ["taken.>"] });
    const err = await addOrUpdateStream(jsm, { name: "OURS", subjects: ["taken.>"] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JetStreamApiError);
    expect((err as JetStreamApiError).code).toBe(10065);
    await expect(jsm.streams.info("OURS")).rejects.toThrow(/stream not found/);
  });
});
