/**
 * The presence replica that owns every partition is SIGKILLed while Herald
 * clients on two gateway processes join and leave a presence stream; a
 * standby replica process takes over. Every announcement the observers get
 * is counted against the takeover rule (services/presence/README.md):
 *
 * - a member still there after the takeover is announced joined exactly once;
 * - a member announced before and gone during the takeover is announced left
 *   exactly once; one who stayed throughout is not announced at all;
 * - a member who joined and left inside the window is announced not at all or
 *   as one join followed by one leave;
 * - every observer ends with the service's member set.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { at } from "../../../shared/test/defined.js";
import { type NatsHandle, startNats } from "../../../shared/test/nats-harness.js";
import { waitFor } from "../../../shared/test/wait.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { FAST_PRESENCE, spawnTidings, type TidingsProcess } from "./processes.js";
import { pusherServer } from "./pusher-client.js";
import type { TestClient } from "./ws-client.js";

const STREAM = "presence-takeover";

let nats: NatsHandle;
let owner: TidingsProcess;
let standby: TidingsProcess;
let g1: TidingsProcess;
let g2: TidingsProcess;

const acquired = (p: TidingsProcess) =>
  p
    .output()
    .split("\n")
    .filter((l) => l.includes('"msg":"presence partition acquired"')).length;

beforeAll(async () => {
  nats = await startNats();
  const env = { NATS_URL: nats.url(0), ...FAST_PRESENCE };
  owner = await spawnTidings("presence", env);
  await waitFor(() => acquired(owner) === 16, { timeoutMs: 20_000, what: "owner has all" });
  standby = await spawnTidings("presence", env);
  [g1, g2] = await Promise.all([spawnTidings("gateway", env), spawnTidings("gateway", env)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([owner, standby, g1, g2].map((p) => p?.kill()));
  await nats?.stop();
});

const connect = (g: TidingsProcess, user: string) =>
  heraldConnect(heraldUrl(g.url, user, [STREAM]));

function memberEvents(c: TestClient): string[] {
  return (c.frames as Frame[])
    .filter((f) => isType("member.joined")(f) || isType("member.left")(f))
    .map((f) => `${f.type.slice("member.".length)}:${String(f.payload.user_id)}`);
}

describe("presence owner killed while members come and go", () => {
  it("announces each change once, by the takeover rule", async () => {
    const gateways = [g1, g2];
    const observers = await Promise.all([connect(g1, "obs1"), connect(g2, "obs2")]);
    const initial: string[][] = [];
    for (const o of observers) {
      const r = await request(o, "subscribe", { stream_id: STREAM });
      initial.push((r.payload.members as { user_id: string }[]).map((m) => m.user_id));
    }
    const olds = await Promise.all(
      ["old1", "old2", "old3", "old4"].map((u, i) => connect(at(gateways, i % 2), u)),
    );
    for (const c of olds) await request(c, "subscribe", { stream_id: STREAM });
    await waitFor(
      () =>
        observers.every(
          (o) => memberEvents(o).filter((e) => e.startsWith("joined:old")).length === 4,
        ),
      {
        what: "the old members announced",
      },
    );
    const announcedBefore = observers.map((o) => memberEvents(o).length);

    // Connected before the kill, so only the presence reports fall in the window.
    const stayers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => connect(at(gateways, i % 2), `stay${i}`)),
    );
    const brief = await Promise.all(
      Array.from({ length: 8 }, (_, i) => connect(at(gateways, i % 2), `brief${i}`)),
    );
    // Churners join and leave over and over, across the kill: the owner is
    // always in the middle of some batch (applied, written, answered, announced)
    // when it dies.
    let churning = true;
    const churners = await Promise.all(
      Array.from({ length: 6 }, (_, i) => connect(at(gateways, i % 2), `churn${i}`)),
    );
    const churn = churners.map(async (c) => {
      while (churning) {
        await request(c, "subscribe", { stream_id: STREAM }, 30_000);
        c.send({ type: "unsubscribe", payload: { stream_id: STREAM } });
        await request(c, "ping", {}, 30_000);
      }
    });
    await waitFor(
      () =>
        observers.every((o) => memberEvents(o).filter((e) => e.includes(":churn")).length >= 24),
      { what: "churn under way" },
    );
    await owner.kill("SIGKILL");
    const subscribed = stayers.map((c) => request(c, "subscribe", { stream_id: STREAM }, 30_000));
    for (const c of brief) c.send({ type: "subscribe", ref: "b", payload: { stream_id: STREAM } });
    // Two of the old members leave by unsubscribing, two by disconnecting.
    at(olds, 0).send({ type: "unsubscribe", payload: { stream_id: STREAM } });
    at(olds, 1).close();
    for (const [i, c] of brief.entries()) {
      if (i % 2 === 0) c.send({ type: "unsubscribe", payload: { stream_id: STREAM } });
      else c.close();
    }
    await waitFor(() => acquired(standby) === 16, { timeoutMs: 30_000, what: "takeover" });
    const sofar = observers.map((o) => memberEvents(o).length);
    await waitFor(() => observers.every((o, n) => memberEvents(o).length >= at(sofar, n) + 24), {
      timeoutMs: 30_000,
      what: "churn going on after the takeover",
    });
    churning = false;
    await Promise.all(churn);
    const replies = await Promise.all(subscribed);
    expect(replies.map((r) => r.type)).toEqual(replies.map(() => "subscribed"));

    // Every brief member's last frame has reached its gateway: the unsubscribers
    // got their subscribe reply (Herald runs a stream's requests in order), the
    // others' close handshake is done.
    await Promise.all(
      brief.map((c, i) =>
        i % 2 === 0 ? c.next<Frame>((f) => f.ref === "b", 30_000) : c.waitClosed(),
      ),
    );
    // Joined after all that on each gateway: a gateway's reports apply in order and
    // the owner sends a channel's signals in order, so once both sentinels' joins
    // are in, every announcement before them is too.
    const sentinels = await Promise.all([connect(g1, "sentinel1"), connect(g2, "sentinel2")]);
    for (const c of sentinels) await request(c, "subscribe", { stream_id: STREAM });
    await waitFor(
      () =>
        observers.every(
          (o) =>
            memberEvents(o).includes("joined:sentinel1") &&
            memberEvents(o).includes("joined:sentinel2"),
        ),
      { timeoutMs: 30_000, what: "the sentinels announced" },
    );
    const res = await pusherServer(g1).get({ path: `/channels/${STREAM}/users` });
    const service = ((await res.json()) as { users: { id: string }[] }).users
      .map((u) => u.id)
      .sort();
    const expected = [
      "obs1",
      "obs2",
      "old3",
      "old4",
      "sentinel1",
      "sentinel2",
      ...stayers.map((_, i) => `stay${i}`),
    ].sort();
    expect(service).toEqual(expected);

    observers.forEach((o, n) => {
      const during = memberEvents(o).slice(announcedBefore[n]);
      const count = (e: string) => during.filter((x) => x === e).length;
      const where = `observer ${n + 1}: ${JSON.stringify(during)}`;
      for (let i = 0; i < stayers.length; i++) {
        expect(count(`joined:stay${i}`), where).toBe(1);
        expect(count(`left:stay${i}`), where).toBe(0);
      }
      for (const u of ["old1", "old2"]) {
        expect(count(`left:${u}`), where).toBe(1);
        expect(count(`joined:${u}`), where).toBe(0);
      }
      for (const u of ["old3", "old4"])
        expect(count(`left:${u}`) + count(`joined:${u}`), where).toBe(0);
      for (let i = 0; i < brief.length; i++) {
        const seen = during.filter((x) => x.endsWith(`:brief${i}`));
        expect([[], [`joined:brief${i}`, `left:brief${i}`]], where).toContainEqual(seen);
      }
      // The observer's own view, replayed from its list and every event, is the
      // service's, and no event contradicts it on the way (a lost leave makes the
      // next join a repeat, a lost join makes the next leave one of a non-member).
      const view = new Set(initial[n]);
      for (const [k, e] of memberEvents(o).entries()) {
        const [action, user = ""] = e.split(":");
        const known = view.has(user);
        if (action === "joined" ? known : !known)
          throw new Error(`${where}: event ${k} (${e}) contradicts the view`);
        if (action === "joined") view.add(user);
        else view.delete(user);
      }
      expect([...view].sort(), where).toEqual(expected);
    });
    for (const c of [...observers, ...olds, ...stayers, ...brief, ...churners, ...sentinels])
      c.close();
  }, 90_000);
});
