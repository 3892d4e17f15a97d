import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../../shared/test/wait.js";
import { ENGINES, type TestEngine } from "./engines.js";
import { startTestGateway, type TestGateway } from "./harness.js";
import { isEvent, type PusherFrame, postJson, pusherServer, rawPusher } from "./pusher-client.js";

const jetstream = ENGINES.find(([name]) => name === "jetstream");
if (!jetstream) throw new Error("no jetstream engine in ENGINES");

/** `tidings_position_reads_total{kind}` as the gateway exports it. */
async function reads(gw: TestGateway): Promise<Record<string, number>> {
  const text = await (await fetch(gw.http("/metrics"))).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tidings_position_reads_total\{kind="(\w+)"\} (\d+)$/gm))
    out[m[1] as string] = Number(m[2]);
  return out;
}

// A subscribe on JetStream reads no channel position while the app feed's
// cursor serves it: the metric shows the one anchoring read, and no start reads.
describe("position reads on JetStream", () => {
  let te: TestEngine;
  let gw: TestGateway;
  beforeAll(async () => {
    te = await jetstream[1]();
    gw = await startTestGateway({ engine: te.engine });
  });
  afterAll(async () => {
    await gw?.stop();
    await te?.stop();
  });

  it("counts the feed's anchoring read and no channel start reads for fresh subscribes", async () => {
    const sent = await postJson(pusherServer(gw), "/events", {
      name: "x",
      channels: ["before"],
      data: "{}",
    });
    expect(sent.status).toBe(200);
    const { c } = await rawPusher(gw);
    for (let i = 0; i < 20; i++) {
      c.send({ event: "pusher:subscribe", data: { channel: `room-${i}` } });
      await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", `room-${i}`));
    }
    // A second connection joining channels the gateway follows reads nothing either.
    const { c: other } = await rawPusher(gw);
    other.send({ event: "pusher:subscribe", data: { channel: "room-0" } });
    await other.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", "room-0"));
    await waitFor(async () => ((await reads(gw)).anchor ?? 0) >= 1, { what: "the anchoring read" });
    expect((await reads(gw)).start ?? 0).toBe(0);
    c.close();
    other.close();
  });
});
