import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectDefined } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import type { ClusterSnapshot } from "../src/console/snapshot.js";
import { CONSOLE_SECRET, type ConsoleSession, consoleSession } from "./console-client.js";
import { TEST_APP } from "./harness.js";
import { type Frame, heraldConnect, heraldUrl, isType, request } from "./herald-client.js";
import { startTwoGateways, type TwoGateways } from "./processes.js";
import { connected, nextEvent, type Pusher, pusherClient, subscribe } from "./pusher-client.js";

/** The cluster view across two gateway processes and a presence replica on one NATS. */
describe("console across a cluster", () => {
  let cluster: TwoGateways;
  let ops: ConsoleSession;
  const pushers: Pusher[] = [];

  const snapshot = async () => (await (await ops.get("cluster")).json()) as ClusterSnapshot;
  const gatewayConnections = (s: ClusterSnapshot) =>
    s.processes
      .filter((p) => p.kind === "gateway" && p.state !== "silent")
      .reduce((n, p) => n + (p.connections ?? 0), 0);

  beforeAll(async () => {
    cluster = await startTwoGateways({ TIDINGS_CONSOLE_SECRET: CONSOLE_SECRET });
    ops = await consoleSession(cluster.g1.http);
  });
  afterAll(async () => {
    for (const p of pushers) p.disconnect();
    await cluster?.stop();
  });

  it("sees both gateways, the presence replica, NATS and the app stream", async () => {
    let snap: ClusterSnapshot | undefined;
    await waitFor(
      async () => {
        snap = await snapshot();
        const up = snap.processes.filter((p) => p.state === "up");
        return (
          up.filter((p) => p.kind === "gateway").length === 2 &&
          up.filter((p) => p.kind === "presence").length === 1
        );
      },
      { what: "two gateways and a presence replica in the console", intervalMs: 100 },
    );
    const last = expectDefined(snap, "a snapshot");
    expect(last.engine).toBe("jetstream");
    expect(last.nats?.connected).toBe(true);
    expect(last.streams?.map((s) => s.appId)).toEqual([TEST_APP.id]);
    expect(last.streams?.[0]?.replicas).toBe(1);
    const presence = expectDefined(
      last.processes.find((p) => p.kind === "presence"),
      "the presence process",
    );
    expect(presence.partitions).toBe(16);
    for (const p of last.processes) {
      expect(p.rssBytes).toBeGreaterThan(0);
      expect(p.natsConnected).toBe(true);
    }
  });

  it("inspects a channel used from both gateways, publishes to it and terminates a user", async () => {
    const room = `console-room-${Date.now()}`;
    const baseline = gatewayConnections(await snapshot());
    const herald = await heraldConnect(heraldUrl(cluster.g2.url, "hanna", [room]));
    expect((await request(herald, "subscribe", { stream_id: room })).type).toBe("subscribed");
    const pusher = pusherClient(cluster.g1);
    pushers.push(pusher);
    await connected(pusher);
    const { channel } = await subscribe(pusher, room);

    await waitFor(async () => gatewayConnections(await snapshot()) === baseline + 2, {
      what: "both connections counted",
      intervalMs: 100,
    });

    type Rows = {
      channels: { channel: string; byDialect: Record<string, number>; gateways: string[] }[];
      gateways: number;
    };
    let rows: Rows | undefined;
    await waitFor(
      async () => {
        rows = (await (
          await ops.get(`channels?app=${TEST_APP.id}&prefix=console-room-`)
        ).json()) as Rows;
        // Under load a gateway may miss the gather's bound; the answer says so.
        return rows.gateways === 2 && rows.channels.some((c) => c.channel === room);
      },
      { what: "the channel found by prefix, both gateways answering", intervalMs: 50 },
    );
    const row = expectDefined(
      expectDefined(rows, "the channel rows").channels.find((c) => c.channel === room),
      `the row of ${room}`,
    );
    expect(row.byDialect).toEqual({ herald: 1, pusher: 1 });
    expect(row.gateways).toHaveLength(2);

    type Detail = {
      subscribers: number;
      byGateway: Record<string, number>;
      connections: { userId?: string; dialect: string }[];
      gateways: number;
    };
    let answered: Detail | undefined;
    await waitFor(
      async () => {
        answered = (await (
          await ops.get(`channel?app=${TEST_APP.id}&channel=${room}`)
        ).json()) as Detail;
        return answered.gateways === 2;
      },
      { what: "the channel's detail from both gateways", intervalMs: 50 },
    );
    const detail = expectDefined(answered, "the channel's detail");
    expect(detail.subscribers).toBe(2);
    expect(Object.keys(detail.byGateway)).toHaveLength(2);
    expect(detail.connections.find((c) => c.dialect === "herald")?.userId).toBe("hanna");

    const atPusher = nextEvent(channel, "console-test");
    expect(
      (
        await ops.post("publish", {
          app: TEST_APP.id,
          channel: room,
          name: "console-test",
          data: { hi: 1 },
        })
      ).status,
    ).toBe(200);
    expect((await atPusher).data).toEqual({ hi: 1 });
    const atHerald = await herald.next<Frame>(isType("event.new", (p) => p.stream_id === room));
    expect(atHerald.payload).toMatchObject({ type: "console-test", body: { hi: 1 } });

    const user = (await (await ops.get(`users?app=${TEST_APP.id}&user_id=hanna`)).json()) as {
      connections: { gatewayId: string; dialect: string; channels: string[] }[];
      status: Record<string, string>;
    };
    expect(user.connections).toHaveLength(1);
    expect(user.connections[0]).toMatchObject({ dialect: "herald", channels: [room] });
    expect(user.status[TEST_APP.id]).toBe("online");

    expect((await ops.post("terminate", { app: TEST_APP.id, user_id: "hanna" })).status).toBe(200);
    await waitFor(() => herald.closed !== undefined, { what: "hanna's connection closed" });
    await waitFor(async () => gatewayConnections(await snapshot()) === baseline + 1, {
      what: "the console's connection count to drop",
      intervalMs: 100,
    });
  });

  it("blocks and unblocks a user in a Herald stream through the HTTP API's implementation", async () => {
    const stream = `console-block-${Date.now()}`;
    const bob = await heraldConnect(heraldUrl(cluster.g2.url, "bob", [stream]));
    expect((await request(bob, "subscribe", { stream_id: stream })).type).toBe("subscribed");
    const block = await ops.post("block", {
      app: TEST_APP.id,
      channel: stream,
      user_id: "bob",
      blocked: true,
    });
    expect(block.status).toBe(200);
    expect((await bob.next<Frame>(isType("error"))).payload.code).toBe("blocked");
    const unblock = await ops.post("block", {
      app: TEST_APP.id,
      channel: stream,
      user_id: "bob",
      blocked: false,
    });
    expect(unblock.status).toBe(200);
    await waitFor(
      async () => (await request(bob, "subscribe", { stream_id: stream })).type === "subscribed",
      {
        what: "bob unblocked",
        intervalMs: 50,
      },
    );
    bob.ws.close();
  });
});
