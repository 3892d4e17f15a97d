import { createHash } from "node:crypto";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectDefined } from "../../../shared/test/defined.js";
import { signRequest } from "../src/dialects/pusher/http-sign.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, request } from "./herald-client.js";
import { isEvent, type PusherFrame, rawPusher } from "./pusher-client.js";
import { TestClient } from "./ws-client.js";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(() => gw.stop());

const now = () => Math.floor(Date.now() / 1000);
const app = { ...TEST_APP, apiKeys: [], allowedOrigins: [], webhooks: [], limits: {} as never };

describe("pusher HTTP API signature", () => {
  const path = `/apps/${TEST_APP.id}/events`;

  it("refuses a repeated parameter that would let a captured request carry another body", async () => {
    const { c } = await rawPusher(gw);
    c.send({ event: "pusher:subscribe", data: { channel: "forged" } });
    await c.next<PusherFrame>(isEvent("pusher_internal:subscription_succeeded", "forged"));
    const signedBody = JSON.stringify({ name: "e", channel: "forged", data: "genuine" });
    const signed = signRequest(app, "POST", path, {}, signedBody, now());
    // The attacker keeps the signed query (whose last body_md5 is the signed one)
    // and puts a body_md5 of its own body first, which a first-value check would read.
    const evil = JSON.stringify({ name: "e", channel: "forged", data: "forged" });
    const md5 = createHash("md5").update(evil).digest("hex");
    const res = await fetch(gw.http(`${path}?body_md5=${md5}&${signed}`), {
      method: "POST",
      body: evil,
    });
    expect(res.status).toBe(401);
    // The genuine request still goes through, and it is the only event delivered.
    const ok = await fetch(gw.http(`${path}?${signed}`), { method: "POST", body: signedBody });
    expect(ok.status).toBe(200);
    const got = await c.next<PusherFrame>(isEvent("e", "forged"));
    expect(got.data).toBe("genuine");
    c.close();
  });

  it("refuses the same parameter in another letter case", async () => {
    const body = JSON.stringify({ name: "e", channel: "x", data: "{}" });
    const q = signRequest(app, "POST", path, {}, body, now() - 3600);
    // The stale signed timestamp respelled, so only the fresh one answers to its name.
    const stale = expectDefined(q.get("auth_timestamp"), "a signed auth_timestamp");
    q.delete("auth_timestamp");
    q.append("AUTH_TIMESTAMP", stale);
    const res = await fetch(gw.http(`${path}?auth_timestamp=${now()}&${q}`), {
      method: "POST",
      body,
    });
    expect(res.status).toBe(401);
  });
});

describe("pusher HTTP API body", () => {
  it("answers a request that cannot be valid before its body arrives", async () => {
    const path = `/apps/${TEST_APP.id}/events`;
    const q = signRequest({ ...app, key: "not-the-key" }, "POST", path, {}, "", now());
    // The client announces a large body and sends none of it: only an answer
    // given without the body can come back.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpRequest(gw.http(`${path}?${q}`), {
        method: "POST",
        headers: { "content-length": "1000000" },
      });
      req.on("response", (res) => {
        resolve(res.statusCode);
        req.destroy();
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    expect(status).toBe(401);
  });
});

describe("herald compact tokens", () => {
  it("refuses a user_id with a newline, which would shift the signed fields", async () => {
    // A token minted for user "a\nb" with streams "s1,s2" signs "a\nb\ns1,s2\nEXP";
    // presented as user "a" with streams "b\ns1,s2" the same bytes are signed.
    const url = new URL(heraldUrl(gw.url, "a\nb", ["s1", "s2"]));
    url.searchParams.set("user_id", "a");
    url.searchParams.set("streams", "b\ns1,s2");
    const c = await TestClient.connect(url.toString());
    const f = await c.next<Frame>((x) => x.type === "auth_error" || x.type === "auth_ok");
    expect(f.type).toBe("auth_error");
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it("keeps a connection whose token outlives a timer's range open", async () => {
    const c = await heraldConnect(heraldUrl(gw.url, "long", ["s"], { ttlSec: 30 * 86400 }));
    const pong = await request(c, "ping", {});
    expect(pong.type).toBe("pong");
    // A timer past 2^31 ms fires at once; the expiry check would then close the socket.
    const reply = await request(c, "subscribe", { stream_id: "s" });
    expect(reply.type).toBe("subscribed");
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    c.close();
  });
});

describe("JSON nested too deep to re-encode", () => {
  // Thousands of levels fit in a small frame; JSON.stringify overflows on them.
  const deep = "[".repeat(3000) + "]".repeat(3000);

  it("herald: refused as too large, so history stays readable", async () => {
    const c = await heraldConnect(heraldUrl(gw.url, "deep", ["deep-h"]));
    c.send(
      `{"type":"event.publish","ref":"d","payload":{"stream_id":"deep-h","type":"t","body":${deep}}}`,
    );
    const err = await c.next<Frame>((f) => f.type === "error");
    expect(err.payload).toEqual({ code: "invalid_payload", message: "frame too large" });
    await request(c, "event.publish", { stream_id: "deep-h", type: "t", body: 1 });
    const page = await request(c, "events.fetch", { stream_id: "deep-h" });
    expect(page.type).toBe("events.batch");
    expect((page.payload.events as { body: unknown }[]).map((e) => e.body)).toEqual([1]);
    c.close();
  });

  it("pusher HTTP: deep data text travels as a string, deep body JSON is refused", async () => {
    const path = `/apps/${TEST_APP.id}/events`;
    const post = (body: string) =>
      fetch(gw.http(`${path}?${signRequest(app, "POST", path, {}, body, now())}`), {
        method: "POST",
        body,
      });
    const asText = await post(JSON.stringify({ name: "t", channel: "deep-p", data: deep }));
    expect(asText.status).toBe(200);
    const c = await heraldConnect(heraldUrl(gw.url, "deep", ["deep-p"]));
    const page = await request(c, "events.fetch", { stream_id: "deep-p" });
    expect((page.payload.events as { body: unknown }[]).map((e) => e.body)).toEqual([deep]);
    const asJson = await post(`{"name":"t","channel":"deep-p","data":${deep}}`);
    expect(asJson.status).toBe(400);
    expect(await asJson.text()).toMatch(/nested deeper than 64/);
    c.close();
  });

  it("broadcaster REST: refused with InvalidArgument", async () => {
    const res = await fetch(gw.http(`/broadcaster/${TEST_APP.key}/publish`), {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_APP.secret}` },
      body: `{"channel":"deep-b","event":"t","payload":${deep}}`,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "InvalidArgument" } });
  });
});
