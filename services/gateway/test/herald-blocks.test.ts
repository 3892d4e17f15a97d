import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../src/dialects/pusher/http-sign.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(() => gw.stop());

const app = { ...TEST_APP, apiKeys: [], allowedOrigins: [], webhooks: [], limits: {} as never };
const now = () => Math.floor(Date.now() / 1000);

/** A signed call to the HTTP API, as a backend would make it. */
async function api(method: "POST" | "DELETE", path: string, body?: unknown): Promise<Response> {
  const text = body === undefined ? "" : JSON.stringify(body);
  const query = signRequest(app, method, path, {}, text, now());
  return fetch(gw.http(`${path}?${query}`), { method, body: text || undefined });
}

describe("herald blocked users", () => {
  it("blocks a user in one stream through the HTTP API, live and on later connections", async () => {
    const s = "blk";
    const alice = await heraldConnect(heraldUrl(gw.url, "alice", [s, "other"]));
    const bob = await heraldConnect(heraldUrl(gw.url, "bob", [s, "other"]));
    await request(alice, "subscribe", { stream_id: s });
    await request(bob, "subscribe", { stream_id: s });
    await request(bob, "subscribe", { stream_id: "other" });

    const res = await api("POST", `/apps/${TEST_APP.id}/channels/${s}/blocked_users`, {
      user_id: "bob",
    });
    expect(res.status).toBe(200);
    expect((await bob.next<Frame>(isType("error"))).payload.code).toBe("blocked");
    // Bob is out of the stream: no events, no publishing, no way back in.
    await request(alice, "event.publish", { stream_id: s, type: "n", body: "after" });
    expect(
      (await request(bob, "event.publish", { stream_id: s, type: "n", body: 1 })).payload.code,
    ).toBe("blocked");
    expect((await request(bob, "subscribe", { stream_id: s })).payload.code).toBe("blocked");
    expect(bob.all<Frame>(isType("event.new", (p) => p.stream_id === s))).toEqual([]);
    // Other streams and other users are untouched.
    expect(
      (await request(bob, "event.publish", { stream_id: "other", type: "n", body: 2 })).type,
    ).toBe("event.ack");
    await alice.next<Frame>(isType("event.new", (p) => p.body === "after"));
    // A new connection of bob's learns the block at connect.
    const bob2 = await heraldConnect(heraldUrl(gw.url, "bob", [s]));
    expect((await request(bob2, "subscribe", { stream_id: s })).payload.code).toBe("blocked");

    const un = await api("DELETE", `/apps/${TEST_APP.id}/channels/${s}/blocked_users/bob`);
    expect(un.status).toBe(200);
    await request(bob2, "ping", {});
    expect((await request(bob2, "subscribe", { stream_id: s })).type).toBe("subscribed");
    const bob3 = await heraldConnect(heraldUrl(gw.url, "bob", [s]));
    expect((await request(bob3, "subscribe", { stream_id: s })).type).toBe("subscribed");
    for (const c of [alice, bob, bob2, bob3]) c.close();
  });

  it("refuses bad block requests with Pusher's statuses", async () => {
    const path = `/apps/${TEST_APP.id}/channels/blk/blocked_users`;
    expect((await api("POST", path, { user_id: "" })).status).toBe(400);
    expect(
      (
        await api("POST", `/apps/${TEST_APP.id}/channels/bad%20name/blocked_users`, {
          user_id: "x",
        })
      ).status,
    ).toBe(400);
    const unsigned = await fetch(gw.http(path), { method: "POST", body: '{"user_id":"x"}' });
    expect(unsigned.status).toBe(401);
  });
});
