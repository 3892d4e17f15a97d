import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isUnavailable } from "../src/engine/js-codec.js";
import { Requests } from "../src/nats/requests.js";
import { type NatsHandle, startNats } from "./nats-harness.js";

let nats: NatsHandle;
beforeAll(async () => {
  nats = await startNats({ jetstream: false });
});
afterAll(async () => {
  await nats?.stop();
});

// The engine's hot reads use this instead of nc.request: callers classify
// its failures with the same isUnavailable, so they must be nc.request's.
describe("shared-inbox requests", () => {
  it("answers each request with its own reply, many in flight", async () => {
    const nc = await connect({ servers: nats.url(0) });
    const echo = nc.subscribe("echo", { callback: (_e, m) => void m.respond(m.data) });
    const requests = new Requests(nc, 2000);
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => requests.request("echo", `n${i}`)),
    );
    expect(replies.map((r) => r.string())).toEqual(Array.from({ length: 200 }, (_, i) => `n${i}`));
    echo.unsubscribe();
    await nc.close();
  });

  it("fails like nc.request: no responders, timeout, closed connection", async () => {
    const nc = await connect({ servers: nats.url(0) });
    const requests = new Requests(nc, 300);
    const [ours, theirs] = await Promise.all([
      requests.request("nobody", "x").catch((e: unknown) => e),
      nc.request("nobody", "x", { timeout: 300 }).catch((e: unknown) => e),
    ]);
    expect(ours).toBeInstanceOf(RequestError);
    expect((ours as RequestError).isNoResponders()).toBe(true);
    expect((ours as RequestError).cause).toBeInstanceOf(NoRespondersError);
    expect((theirs as RequestError).isNoResponders()).toBe(true);
    expect(isUnavailable(ours)).toBe(true);

    const silent = nc.subscribe("silent", { callback: () => {} });
    const started = Date.now();
    const late = await requests.request("silent", "x").catch((e: unknown) => e);
    expect(late).toBeInstanceOf(TimeoutError);
    expect(isUnavailable(late)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    silent.unsubscribe();

    nc.subscribe("silent2", { callback: () => {} });
    const pending = requests.request("silent2", "x").catch((e: unknown) => e);
    await nc.close();
    const closed = await pending;
    expect(closed).toBeInstanceOf(RequestError);
    expect((closed as Error).message).toBe("connection closed");
    await expect(requests.request("echo", "x")).rejects.toThrow("connection closed");
  });
});
