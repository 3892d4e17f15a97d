import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { at } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import {
  broadcasterConnect,
  broadcasterJwt,
  call,
  isMessage,
  type Notification,
} from "./broadcaster-client.js";
import { appKeyAuth, type FoonyFrame, foonyConnect, foonyJwt, isT, req } from "./foony-client.js";
import { TEST_APP } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { startTwoGateways, type TidingsProcess, type TwoGateways } from "./processes.js";
import type { TestClient } from "./ws-client.js";

describe("broadcaster and foony across two gateways on one NATS", () => {
  let cluster: TwoGateways;
  let g1: TidingsProcess;
  let g2: TidingsProcess;
  const open: TestClient[] = [];
  const track = <T extends TestClient>(c: T): T => {
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = await startTwoGateways();
    ({ g1, g2 } = cluster);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("broadcaster: publishes on one gateway reach the other in order, seq 1..n per subscription", async () => {
    const sub = track(await broadcasterConnect(g1.url, broadcasterJwt({ sub: "s" })));
    await call(sub, "subscribe", { channel: "bx1" });
    const pub = track(await broadcasterConnect(g2.url, broadcasterJwt({ sub: "p" })));
    const sent = Array.from({ length: 50 }, (_, i) => i);
    await Promise.all(
      sent.map((i) => call(pub, "publish", { channel: "bx1", event: "n", payload: i })),
    );
    const res = await fetch(g2.http(`/broadcaster/${TEST_APP.key}/publish`), {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_APP.secret}`, "idempotency-key": "nats-1" },
      body: JSON.stringify({ channel: "bx1", event: "rest", payload: "last" }),
    });
    expect(res.status).toBe(200);
    await waitFor(() => sub.all<Notification>(isMessage()).length >= 51, { what: "51 messages" });
    const got = sub.all<Notification>(isMessage()).map((f) => f.params);
    expect(got.map((p) => p.seq)).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
    const eventSeqs = got.map((p) => Number(p.id.replace("evt_", "")));
    expect([...eventSeqs].sort((a, b) => a - b)).toEqual(eventSeqs);
    expect(new Set(got.slice(0, 50).map((p) => p.payload))).toEqual(new Set(sent));
    expect(got[50]).toMatchObject({ event: "rest", payload: "last" });
    // The idempotent retry goes to the other gateway and still stores nothing new.
    const retry = await fetch(g1.http(`/broadcaster/${TEST_APP.key}/publish`), {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_APP.secret}`, "idempotency-key": "nats-1" },
      body: JSON.stringify({ channel: "bx1", event: "rest", payload: "last" }),
    });
    expect(((await retry.json()) as { id: string }).id).toBe(got[50]?.id);
  });

  it("broadcaster ⇄ herald on different gateways", async () => {
    const b = track(await broadcasterConnect(g1.url, broadcasterJwt({ sub: "bc" })));
    await call(b, "subscribe", { channel: "bx2" });
    const h = track(await heraldConnect(heraldUrl(g2.url, "u1", ["bx2"])));
    await request(h, "subscribe", { stream_id: "bx2" });
    const ack = await request(h, "event.publish", { stream_id: "bx2", type: "t", body: { a: 1 } });
    expect((await b.next<Notification>(isMessage())).params).toMatchObject({
      id: ack.payload.event_id,
      seq: 1,
      event: "t",
      payload: { a: 1 },
    });
    await call(b, "publish", { channel: "bx2", event: "back", payload: 2 });
    expect(
      (await h.next<Frame>(isType("event.new", (p) => p.type === "back"))).payload,
    ).toMatchObject({ body: 2, user_id: "bc" });
  });

  it("foony: live across gateways, then resume on the other gateway without gaps or duplicates", async () => {
    const pub = track(await foonyConnect(g2.url, appKeyAuth("pub")));
    const first = track(await foonyConnect(g1.url, foonyJwt({ sub: "reader" })));
    await req(first, { t: "sub", channel: "fx1" });
    for (let i = 1; i <= 5; i++) await req(pub, { t: "pub", channel: "fx1", name: "n", data: i });
    await waitFor(() => first.all<FoonyFrame>(isT("msg")).length === 5, { what: "5 live" });
    const last = at(first.all<FoonyFrame>(isT("msg")), -1).messageId as string;
    first.close();
    await first.waitClosed();
    for (let i = 6; i <= 10; i++) await req(pub, { t: "pub", channel: "fx1", name: "n", data: i });
    const again = track(await foonyConnect(g2.url, foonyJwt({ sub: "reader" })));
    const burst = Array.from({ length: 10 }, (_, i) =>
      req(pub, { t: "pub", channel: "fx1", name: "n", data: 11 + i }),
    );
    expect((await req(again, { t: "sub", channel: "fx1", lastMessageId: last })).t).toBe("ack");
    await Promise.all(burst);
    await waitFor(() => again.all<FoonyFrame>(isT("msg")).length >= 15, { what: "replay + live" });
    expect(again.all<FoonyFrame>(isT("msg")).map((m) => m.data)).toEqual(
      Array.from({ length: 15 }, (_, i) => i + 6),
    );
    const hist = await req(again, { t: "hist", channel: "fx1", limit: 3 });
    expect((hist.messages as FoonyFrame[]).map((m) => m.data)).toEqual([18, 19, 20]);
  });

  it("foony: presence crosses gateways, and a closed connection's leaves do too", async () => {
    const watcher = track(await foonyConnect(g1.url, appKeyAuth("watcher")));
    await req(watcher, { t: "sub", channel: "fx2" });
    const ann = track(await foonyConnect(g2.url, foonyJwt({ sub: "ann" })));
    await req(ann, { t: "pres", channel: "fx2", action: "enter", data: { s: 1 } });
    expect(await watcher.next<FoonyFrame>(isT("presEvt"))).toMatchObject({
      action: "enter",
      clientId: "ann",
      connectionId: ann.connected.connectionId,
      data: { s: 1 },
    });
    ann.close();
    expect(await watcher.next<FoonyFrame>(isT("presEvt"))).toMatchObject({
      action: "leave",
      clientId: "ann",
      data: { s: 1 },
    });
  });
});
