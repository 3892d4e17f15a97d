import Echo from "laravel-echo";
import PusherJs from "pusher-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";
import { pusherServer } from "./pusher-client.js";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
});

/** Echo as a Laravel app configures it, pointed at Tidings; auth as a backend would sign it. */
function echo() {
  const signer = pusherServer(gw);
  return new Echo({
    broadcaster: "pusher",
    key: TEST_APP.key,
    cluster: "mt1",
    wsHost: "127.0.0.1",
    wsPort: gw.port,
    forceTLS: false,
    enabledTransports: ["ws"],
    // Echo's option is typed as the module; at runtime the CommonJS default is the class it needs.
    Pusher: PusherJs,
    authorizer: (channel: { name: string }) => ({
      authorize: (
        socketId: string,
        callback: (error: Error | null, auth: { auth: string } | null) => void,
      ) => {
        callback(null, signer.authorizeChannel(socketId, channel.name));
      },
    }),
  });
}

/** Resolves once Echo's channel is subscribed (Echo's `subscribed` callback). */
function subscribed(ch: { subscribed(cb: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => ch.subscribed(resolve));
}

describe("laravel-echo (broadcaster pusher) against Tidings", () => {
  it("listens on a public channel to events triggered with the server SDK", async () => {
    const e = echo();
    try {
      const ch = e.channel("orders");
      await subscribed(ch);
      // Echo prefixes Laravel's `App\Events\` namespace unless the name starts with a dot.
      const shipped = new Promise((resolve) => ch.listen("OrderShipped", resolve));
      const raw = new Promise((resolve) => ch.listen(".raw-name", resolve));
      await pusherServer(gw).trigger("orders", "App\\Events\\OrderShipped", { id: 7 });
      await pusherServer(gw).trigger("orders", "raw-name", { ok: true });
      expect(await shipped).toEqual({ id: 7 });
      expect(await raw).toEqual({ ok: true });
    } finally {
      e.disconnect();
    }
  });

  it("subscribes to a private channel through its authorizer", async () => {
    const e = echo();
    try {
      const ch = e.private("user.1");
      await subscribed(ch);
      const got = new Promise((resolve) => ch.listen(".note", resolve));
      await pusherServer(gw).trigger("private-user.1", "note", { hi: 1 });
      expect(await got).toEqual({ hi: 1 });
    } finally {
      e.disconnect();
    }
  });
});
