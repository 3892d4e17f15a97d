import { describe, expect, it } from "vitest";
import { MemoryEngine } from "../../../shared/src/engine/memory.js";
import type { Delivery, Signal } from "../../../shared/src/model.js";
import { LocalPresence } from "./local.js";

describe("LocalPresence", () => {
  // In-process mode must reach dialects the same way the service does: engine signals.
  it("emits member, count, status and watch signals through the memory engine", async () => {
    const engine = new MemoryEngine();
    const onChannel: Delivery[] = [];
    const onUser: Signal[] = [];
    engine.subscribe("app", "presence-x", (d) => onChannel.push(d));
    engine.subscribeUser("app", "watcher", (s) => onUser.push(s));
    const presence = new LocalPresence({ engine });
    await presence.connectionOpened("app", "w", "watcher", ["u1"]);
    await presence.connectionOpened("app", "c1", "u1", []);
    const r = await presence.subscribe({
      appId: "app",
      channel: "presence-x",
      connectionId: "c1",
      userId: "u1",
      member: true,
      maxMembers: 10,
    });
    expect(r).toEqual({
      ok: true,
      members: [{ userId: "u1", status: "online" }],
      subscriberCount: 1,
      version: [0, 1],
    });
    await presence.setStatus("app", "u1", "away");
    expect(onChannel.map((d) => d.type === "signal" && d.signal)).toEqual([
      {
        kind: "member",
        action: "joined",
        userId: "u1",
        excludeConnectionId: "c1",
        version: [0, 1],
      },
      { kind: "subscriber_count", count: 1 },
      { kind: "status", userId: "u1", status: "away" },
    ]);
    expect(onUser).toEqual([
      { kind: "watch", userId: "u1", online: true },
      { kind: "status", userId: "u1", status: "online" },
      { kind: "status", userId: "u1", status: "away" },
    ]);
    expect(await presence.status("app", "u1")).toBe("away");
    expect(await presence.channels("app")).toEqual([
      { channel: "presence-x", subscriptionCount: 1, userCount: 1 },
    ]);
    await presence.close();
  });

  // A throwing subscriber must not fail the presence operation that triggered it.
  it("survives a signal handler that throws", async () => {
    const engine = new MemoryEngine();
    engine.subscribe("app", "c", () => {
      throw new Error("handler bug");
    });
    const presence = new LocalPresence({ engine });
    const r = await presence.subscribe({
      appId: "app",
      channel: "c",
      connectionId: "x",
      member: false,
      maxMembers: 1,
    });
    expect(r.ok).toBe(true);
    await presence.close();
  });
});
