/**
 * Smoke test of Tidings on Node 24, as far as this machine (Debian bookworm,
 * glibc 2.36) allows: the uWebSockets.js build with Node 24 binaries needs
 * glibc 2.38, so `.ci/node24.sh` fetches Node 24 from the npm registry and
 * trixie's glibc/libstdc++ into .tmp/, and `.tmp/node24/node` runs that Node
 * under trixie's dynamic loader. The whole system is still bookworm's (the
 * kernel, nats-server, the files); only Node and the libraries it and uWS
 * load are trixie's. Skipped, and says so, when the fetch failed.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { startNats } from "../../../shared/test/nats-harness.js";
import { spawnTidings } from "./processes.js";
import { connected, nextEvent, pusherClient, pusherServer, subscribe } from "./pusher-client.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const NODE24 = process.env.TIDINGS_NODE24 ?? join(ROOT, ".tmp/node24/node");
const run = promisify(execFile);

const fetched = existsSync(NODE24);
const label = fetched
  ? "Node 24 under trixie's loader"
  : "Node 24 (not fetched: run bash .ci/node24.sh)";
if (!fetched)
  console.warn(`node24.test.ts: skipped, ${NODE24} is missing (run bash .ci/node24.sh)`);

/** A pusher-js client gets an event the server SDK publishes over the HTTP API. */
async function roundTrip(port: number): Promise<unknown> {
  const target = { port, url: (path: string) => `ws://127.0.0.1:${port}${path}` };
  const p = pusherClient(target);
  try {
    await connected(p);
    const { channel } = await subscribe(p, "node24");
    const got = nextEvent(channel, "hello");
    await pusherServer(target).trigger("node24", "hello", { on: "node24" });
    return (await got).data;
  } finally {
    p.disconnect();
  }
}

describe.skipIf(!fetched)(label, () => {
  it("is Node 24 and loads the native uWS build for its ABI (137)", async () => {
    const { stdout } = await run(
      NODE24,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `const m = await import("./shared/src/http/uws.ts");
         console.log(JSON.stringify({ node: process.versions.node, abi: process.versions.modules,
           build: m.uwsBuildFor(process.versions.modules), native: typeof m.default.getParts }));`,
      ],
      { cwd: ROOT },
    );
    const got = JSON.parse(stdout) as Record<string, string>;
    expect(got.node).toMatch(/^24\./);
    expect(got).toMatchObject({
      abi: "137",
      build: "@btc-vision/uwebsockets.js",
      native: "function",
    });
  });

  it("runs the gateway (memory engine): a pusher-js client receives a published event", async () => {
    await using gw = await spawnTidings("all", {}, NODE24);
    expect(await roundTrip(gw.port)).toEqual({ on: "node24" });
  });

  it("runs a gateway and presence over NATS JetStream: the event goes through the stream", async () => {
    await using nats = await startNats();
    const env = { NATS_URL: nats.url(0) };
    await using presence = await spawnTidings("presence", env, NODE24);
    void presence;
    await using gw = await spawnTidings("gateway", env, NODE24);
    expect(await roundTrip(gw.port)).toEqual({ on: "node24" });
  });
});
