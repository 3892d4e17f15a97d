import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { heraldConnect, heraldUrl, request } from "./herald-client.js";
import { spawnTidings } from "./processes.js";

describe("process lifecycle", () => {
  it("npm start's process serves on the memory engine and says where", async () => {
    await using p = await spawnTidings("all", { TIDINGS_APPS: "" });
    expect(p.output()).toMatch(/engine: memory/);
    expect(p.output()).toMatch(/id=app-id {2}key=app-key {2}secret=app-secret/);
    const c = await heraldConnect(heraldUrl(p.url, "u", ["s"]));
    expect((await request(c, "subscribe", { stream_id: "s" })).type).toBe("subscribed");
    c.close();
  });

  it("refuses to start on bad config, naming every bad variable", async () => {
    await expect(spawnTidings("all", { PORT: "x", TIDINGS_MAX_FRAME_BYTES: "1" })).rejects.toThrow(
      /PORT: must be an integer[\s\S]*TIDINGS_MAX_FRAME_BYTES: must be at least 256/,
    );
  });

  it("on SIGTERM stops accepting, asks clients to reconnect and exits cleanly", async () => {
    const p = await spawnTidings("all", { TIDINGS_DRAIN_SECONDS: "1" });
    const clients = await Promise.all(
      [1, 2, 3].map((i) => heraldConnect(heraldUrl(p.url, `u${i}`, []))),
    );
    const exited = once(p.proc, "exit");
    p.proc.kill("SIGTERM");
    for (const c of clients) expect((await c.waitClosed(5000)).code).toBe(1012);
    const [code, signal] = await exited;
    expect({ code, signal, out: code === 0 ? "" : p.output().slice(-2000) }).toEqual({
      code: 0,
      signal: null,
      out: "",
    });
    await expect(fetch(p.http("/healthz"))).rejects.toThrow();
  });
});
