/**
 * Members joining one presence channel at the same moment, on two gateway
 * processes sharing one presence replica over NATS: every member must end
 * with exactly the service's member set, having seen each other member once
 * (in its list or as one join event), never twice. A last "sentinel" member
 * joins after the others; the owner publishes a channel's member signals in
 * order, so once a client has the sentinel's join it has every earlier one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { at } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import { appKeyAuth, type FoonyFrame, foonyConnect, isT, req } from "./foony-client.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { startTwoGateways, type TidingsProcess, type TwoGateways } from "./processes.js";
import {
  connected,
  type Pusher,
  pusherClient,
  pusherServer,
  subscribe,
  type Target,
} from "./pusher-client.js";
import type { TestClient } from "./ws-client.js";

const TRIALS = 20;

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

/** What one client saw: the list it got on subscribing, then each join and leave in order. */
interface View {
  initial: string[];
  events: string[];
}

/** The member set a view ends with; throws on an event that contradicts the view so far. */
function replay(v: View): string[] {
  const set = new Set(v.initial);
  for (const e of v.events) {
    const [action, user = ""] = e.split(":");
    if (action === "joined" ? set.has(user) : !set.has(user))
      throw new Error(`${e} contradicts ${JSON.stringify([...set])} (${JSON.stringify(v)})`);
    if (action === "joined") set.add(user);
    else set.delete(user);
  }
  return [...set].sort();
}

async function serviceMembers(channel: string): Promise<string[]> {
  const res = await pusherServer(g1).get({ path: `/channels/${channel}/users` });
  const body = (await res.json()) as { users: { id: string }[] };
  return body.users.map((u) => u.id).sort();
}

describe("members joining a presence channel at once", () => {
  it("pusher-js: every member ends with the service's member set, each member seen once", async () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const channel = `presence-race-p${trial}`;
      const users = ["a", "b", "c"].map((u) => `p${trial}${u}`);
      const gateways: Target[] = [g1, g2, g1];
      const clients: Pusher[] = users.map((u, i) =>
        pusherClient(at(gateways, i), { member: { user_id: u } }),
      );
      const sentinel = pusherClient(g2, { member: { user_id: `p${trial}z` } });
      try {
        await Promise.all([...clients, sentinel].map(connected));
        const views: View[] = [];
        const subscribed = clients.map((p, i) => {
          const view: View = { initial: [], events: [] };
          views[i] = view;
          const ch = p.subscribe(channel);
          ch.bind("pusher:member_added", (m: { id: string }) => view.events.push(`joined:${m.id}`));
          ch.bind("pusher:member_removed", (m: { id: string }) => view.events.push(`left:${m.id}`));
          return new Promise<ReturnType<Pusher["subscribe"]>>((resolve) => {
            ch.bind("pusher:subscription_succeeded", (members: { ids?: string[] } & object) => {
              const ids: string[] = [];
              (members as unknown as { each(f: (m: { id: string }) => void): void }).each((m) =>
                ids.push(m.id),
              );
              view.initial = ids;
              resolve(ch);
            });
          });
        });
        const channels = await Promise.all(subscribed);
        await subscribe(sentinel, channel);
        const sentinelId = `p${trial}z`;
        await waitFor(() => views.every((v) => v.events.includes(`joined:${sentinelId}`)), {
          what: `trial ${trial}: every member sees the sentinel join`,
        });
        const expected = [...users, sentinelId].sort();
        expect(await serviceMembers(channel)).toEqual(expected);
        views.forEach((v, i) => {
          expect(replay(v), `trial ${trial} member ${users[i]}: ${JSON.stringify(v)}`).toEqual(
            expected,
          );
          const seen = channels[i] as unknown as { members: { count: number } };
          expect(seen.members.count, `trial ${trial} pusher-js members.count of ${users[i]}`).toBe(
            4,
          );
        });
      } finally {
        for (const p of [...clients, sentinel]) p.disconnect();
      }
    }
  });

  it("herald: every member ends with the service's member set, each member seen once", async () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const stream = `presence-race-h${trial}`;
      const users = ["a", "b", "c"].map((u) => `h${trial}${u}`);
      const sentinelId = `h${trial}z`;
      const gateways = [g1, g2, g1];
      const clients: TestClient[] = await Promise.all(
        users.map((u, i) => heraldConnect(heraldUrl(at(gateways, i).url, u, [stream]))),
      );
      const sentinel = await heraldConnect(heraldUrl(g2.url, sentinelId, [stream]));
      try {
        const replies = await Promise.all(
          clients.map((c) => request(c, "subscribe", { stream_id: stream })),
        );
        expect(replies.map((r) => r.type)).toEqual(["subscribed", "subscribed", "subscribed"]);
        await request(sentinel, "subscribe", { stream_id: stream });
        const memberFrames = (c: TestClient) =>
          (c.frames as Frame[]).filter(
            (f) => isType("member.joined")(f) || isType("member.left")(f),
          );
        await waitFor(
          () =>
            clients.every((c) =>
              memberFrames(c).some(
                (f) => f.type === "member.joined" && f.payload.user_id === sentinelId,
              ),
            ),
          { what: `trial ${trial}: every member sees the sentinel join` },
        );
        const expected = [...users, sentinelId].sort();
        expect(await serviceMembers(stream)).toEqual(expected);
        clients.forEach((c, i) => {
          const view: View = {
            initial: (at(replies, i).payload.members as { user_id: string }[]).map(
              (m) => m.user_id,
            ),
            events: memberFrames(c).map(
              (f) => `${f.type.slice("member.".length)}:${String(f.payload.user_id)}`,
            ),
          };
          expect(
            replay(view),
            `trial ${trial} member ${users[i]}: ${JSON.stringify(view)}`,
          ).toEqual(expected);
        });
      } finally {
        for (const c of [...clients, sentinel]) c.close();
      }
    }
  });

  // An unsubscribe sent right behind a subscribe must end it, even while the subscribe
  // still waits on its first block lookup in KV (or on presence, during a takeover).
  it("herald: an unsubscribe right behind a subscribe leaves no member behind", async () => {
    for (let trial = 0; trial < 5; trial++) {
      const s = `presence-quick-${trial}`;
      const quick = await heraldConnect(heraldUrl(g1.url, `quick${trial}`, [s]));
      quick.send({ type: "subscribe", ref: "q", payload: { stream_id: s } });
      quick.send({ type: "unsubscribe", payload: { stream_id: s } });
      expect((await quick.next<Frame>((f) => f.ref === "q")).type).toBe("subscribed");
      await request(quick, "ping", {});
      // Same gateway, so its reports reach the owner after the quick one's.
      const later = await heraldConnect(heraldUrl(g1.url, `later${trial}`, [s]));
      const sub = await request(later, "subscribe", { stream_id: s });
      expect(sub.payload.members, `trial ${trial}`).toEqual([
        { user_id: `later${trial}`, status: "online" },
      ]);
      for (const c of [quick, later]) c.close();
    }
  });

  it("foony: every subscriber ends with the service's presence set, each entry entered once", async () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const channel = `race-f${trial}`;
      const gateways = [g1, g2, g1];
      const clients = await Promise.all(
        gateways.map((g, i) => foonyConnect(g.url, appKeyAuth(`f${trial}${"abc"[i]}`))),
      );
      const sentinel = await foonyConnect(g2.url, appKeyAuth(`f${trial}z`));
      try {
        // Each subscribes and enters at once: the enters race the others' subscribes.
        await Promise.all(
          clients.map(async (c) => {
            const sub = req(c, { t: "sub", channel });
            const pres = req(c, { t: "pres", channel, action: "enter" });
            expect((await sub).t).toBe("ack");
            expect((await pres).t).toBe("ack");
          }),
        );
        expect((await req(sentinel, { t: "pres", channel, action: "enter" })).t).toBe("ack");
        const entered = (c: TestClient) =>
          (c.frames as FoonyFrame[])
            .filter(isT("presEvt"))
            .map((f) => `${f.action}:${String(f.clientId)}`);
        await waitFor(() => clients.every((c) => entered(c).includes(`enter:f${trial}z`)), {
          what: `trial ${trial}: every subscriber sees the sentinel enter`,
        });
        const expected = [..."abcz"].map((x) => `f${trial}${x}`).sort();
        clients.forEach((c, i) => {
          const view: View = {
            initial: [],
            events: entered(c).map((e) =>
              e.replace("enter:", "joined:").replace("leave:", "left:"),
            ),
          };
          expect(replay(view), `trial ${trial} subscriber ${i}: ${JSON.stringify(view)}`).toEqual(
            expected,
          );
        });
      } finally {
        for (const c of [...clients, sentinel]) c.close();
      }
    }
  });
});
