import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import {
  type Frame,
  heraldConnect,
  heraldJwt,
  heraldUrl,
  isType,
  request,
} from "./herald-client.js";
import { TestClient } from "./ws-client.js";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ env: { TIDINGS_MAX_PRESENCE_MEMBERS: "3" } });
});
afterAll(async () => {
  await gw?.stop();
});

const connect = (user: string, streams: string[]) =>
  heraldConnect(heraldUrl(gw.url, user, streams));
const jwtConnect = async (claims: Record<string, unknown>) =>
  heraldConnect(gw.url(`/ws?key=${TEST_APP.key}&token=${await heraldJwt(claims)}`));

describe("herald presence", () => {
  it("lists members in subscribed and announces joins and leaves at user level", async () => {
    const s = "presence-a";
    const a = await connect("ann", [s]);
    expect((await request(a, "subscribe", { stream_id: s })).payload.members).toEqual([
      { user_id: "ann", status: "online" },
    ]);
    const b1 = await connect("ben", [s]);
    const b2 = await connect("ben", [s]);
    const sub = await request(b1, "subscribe", { stream_id: s });
    expect((sub.payload.members as { user_id: string }[]).map((m) => m.user_id).sort()).toEqual([
      "ann",
      "ben",
    ]);
    expect((await a.next<Frame>(isType("member.joined"))).payload).toEqual({
      stream_id: s,
      user_id: "ben",
    });
    await request(b2, "subscribe", { stream_id: s });
    b1.send({ type: "unsubscribe", payload: { stream_id: s } });
    await request(b1, "ping", {});
    await request(b2, "event.publish", { stream_id: s, type: "n", body: "marker" });
    await a.next<Frame>(isType("event.new", (p) => p.body === "marker"));
    expect(a.all<Frame>(isType("member.left"))).toEqual([]);
    b2.close();
    expect((await a.next<Frame>(isType("member.left"))).payload).toEqual({
      stream_id: s,
      user_id: "ben",
    });
    expect(a.all<Frame>(isType("member.joined"))).toHaveLength(1);
    for (const c of [a, b1]) c.close();
  });

  it("does not track members on streams without the presence- prefix", async () => {
    const a = await connect("ann", ["plain"]);
    const sub = await request(a, "subscribe", { stream_id: "plain" });
    expect(sub.payload.members).toBeUndefined();
    expect(sub.payload.subscriber_count).toBe(1);
    a.close();
  });

  it("refuses a new member with stream_full at the app's member limit", async () => {
    const s = "presence-full";
    const clients = [];
    for (const u of ["u1", "u2", "u3"]) {
      const c = await connect(u, [s]);
      expect((await request(c, "subscribe", { stream_id: s })).type).toBe("subscribed");
      clients.push(c);
    }
    const late = await connect("u4", [s]);
    expect((await request(late, "subscribe", { stream_id: s })).payload.code).toBe("stream_full");
    // An existing member's second connection is not a new member.
    const again = await connect("u1", [s]);
    expect((await request(again, "subscribe", { stream_id: s })).type).toBe("subscribed");
    for (const c of [...clients, late, again]) c.close();
  });

  it("counts subscribers and pushes stream.subscriber_count", async () => {
    const s = "counted";
    const a = await connect("ann", [s]);
    await request(a, "subscribe", { stream_id: s });
    const b = await connect("ben", [s]);
    expect((await request(b, "subscribe", { stream_id: s })).payload.subscriber_count).toBe(2);
    const count = await a.next<Frame>(
      isType("stream.subscriber_count", (p) => p.count === 2),
      3000,
    );
    expect(count.payload).toEqual({ stream_id: s, count: 2 });
    a.close();
    b.close();
  });

  it("sends presence.changed to co-members; offline hides a connected user", async () => {
    const s = "presence-status";
    const a = await connect("ann", [s]);
    const b = await connect("ben", [s]);
    await request(a, "subscribe", { stream_id: s });
    await request(b, "subscribe", { stream_id: s });
    b.send({ type: "presence.set", payload: { status: "away" } });
    expect((await a.next<Frame>(isType("presence.changed"))).payload).toEqual({
      user_id: "ben",
      status: "away",
    });
    b.send({ type: "presence.set", payload: { status: "offline" } });
    expect((await a.next<Frame>(isType("presence.changed"))).payload).toEqual({
      user_id: "ben",
      status: "offline",
    });
    const c = await connect("cat", [s]);
    const members = (await request(c, "subscribe", { stream_id: s })).payload.members as {
      user_id: string;
      status: string;
    }[];
    expect(members.find((m) => m.user_id === "ben")?.status).toBe("offline");
    for (const x of [a, b, c]) x.close();
  });

  // herald.md: presence.changed goes to the subscribers of every stream the user is in,
  // presence- or not, and to the users watching it; nobody else hears of it.
  it("sends presence.changed to subscribers of every stream the user is in and to watchers", async () => {
    const plain = "status-plain";
    const other = "status-other";
    const ben = await connect("sben", [plain]);
    const ann = await connect("sann", [plain]);
    const cat = await connect("scat", [other]);
    const w = await jwtConnect({ sub: "swatch", streams: [], watchlist: ["sben"] });
    await w.next<Frame>(isType("watchlist.online", (p) => p.user_id === "sben"));
    await request(ben, "subscribe", { stream_id: plain });
    await request(ann, "subscribe", { stream_id: plain });
    await request(cat, "subscribe", { stream_id: other });
    ben.send({ type: "presence.set", payload: { status: "away" } });
    ben.send({ type: "presence.set", payload: { status: "dnd" } });
    const isBen = isType("presence.changed", (p) => p.user_id === "sben");
    await ann.next<Frame>(isType("presence.changed", (p) => p.status === "dnd"));
    await w.next<Frame>(isType("presence.changed", (p) => p.status === "dnd"));
    // Each client's frames about ben, one by one: every change once, in order.
    const statuses = (c: TestClient) =>
      c.frames.filter((f) => isBen(f as Frame)).map((f) => (f as Frame).payload.status);
    expect(statuses(ann)).toEqual(["away", "dnd"]);
    expect(statuses(w)).toEqual(["away", "dnd"]);
    // A marker on cat's stream: by the time it arrives, ben's changes would have too.
    await request(cat, "event.publish", { stream_id: other, type: "n", body: "marker" });
    await cat.next<Frame>(isType("event.new", (p) => p.body === "marker"));
    expect(statuses(cat)).toEqual([]);
    for (const c of [ben, ann, cat, w]) c.close();
  });

  it("tells watchers when a watched user comes online and goes offline", async () => {
    const w = await jwtConnect({ sub: "watcher", streams: [], watchlist: ["star"] });
    const star = await connect("star", []);
    expect((await w.next<Frame>(isType("watchlist.online"))).payload).toEqual({ user_id: "star" });
    // A watcher connecting later learns at once who is already online.
    const late = await jwtConnect({ sub: "late", streams: [], watchlist: ["star", "nobody"] });
    expect((await late.next<Frame>(isType("watchlist.online"))).payload).toEqual({
      user_id: "star",
    });
    star.close();
    expect((await w.next<Frame>(isType("watchlist.offline"))).payload).toEqual({ user_id: "star" });
    expect((await late.next<Frame>(isType("watchlist.offline"))).payload).toEqual({
      user_id: "star",
    });
    expect(late.all<Frame>(isType("watchlist.online"))).toHaveLength(1);
    w.close();
    late.close();
  });
});

describe("connection policy", () => {
  it("refuses upgrades from origins the app does not allow", async () => {
    await using strict = await startTestGateway({
      env: {
        TIDINGS_APPS: JSON.stringify([{ ...TEST_APP, allowedOrigins: ["https://good.example"] }]),
      },
    });
    const url = heraldUrl(strict.url, "o", []);
    await expect(
      TestClient.connect(url, { headers: { origin: "https://evil.example" } }),
    ).rejects.toThrow(/403/);
    const ok = await TestClient.connect(url, { headers: { origin: "https://good.example" } });
    await ok.next<Frame>(isType("auth_ok"));
    ok.close();
  });

  it("enforces the app's connection limit", async () => {
    await using small = await startTestGateway({
      env: { TIDINGS_APPS: JSON.stringify([{ ...TEST_APP, limits: { maxConnections: 2 } }]) },
    });
    const a = await heraldConnect(heraldUrl(small.url, "a", []));
    const b = await heraldConnect(heraldUrl(small.url, "b", []));
    const c = await TestClient.connect(heraldUrl(small.url, "c", []));
    expect((await c.next<Frame>(isType("error"))).payload.code).toBe("rate_limited");
    expect((await c.waitClosed()).code).toBe(1013);
    a.close();
    await a.waitClosed();
    const d = await heraldConnect(heraldUrl(small.url, "d", []));
    for (const x of [b, d]) x.close();
  });
});
