/**
 * The two client dialects the fan-out benchmark speaks: Pusher protocol 7
 * (Tidings and Soketi; events published through the signed HTTP API) and
 * Herald (Tidings only; events published by one extra WebSocket connection).
 */
import { Agent } from "node:http";
import Pusher from "pusher";
import WebSocket from "ws";
import { signCompact } from "../services/gateway/src/dialects/herald/token.js";
import { APP } from "./gateway-servers.js";

export type DialectName = "pusher" | "herald";
export const CHANNEL = "bench";

export interface Dialect {
  /**
   * Opens one subscriber and resolves once it is subscribed to `channel`;
   * `localAddress` binds its source address (a 127.x.y.z of its own, so many
   * clients do not exhaust one address's ephemeral ports).
   */
  subscribe(
    port: number,
    n: number,
    onFrame: (text: string) => void,
    channel?: string,
    localAddress?: string,
  ): Promise<WebSocket>;
  /** A publisher; `publish` resolves when the server accepted the event. */
  publisher(port: number): Promise<{
    publish(data: string, channel?: string): Promise<void>;
    close(): void;
  }>;
}

const wsOptions = { perMessageDeflate: false, skipUTF8Validation: true };

/** Opens a socket and resolves once `ready` accepts a frame; later frames go to `onFrame`. */
function open(
  url: string,
  ready: (msg: Record<string, unknown>, ws: WebSocket) => boolean,
  onFrame: (text: string) => void,
  localAddress?: string,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, localAddress ? { ...wsOptions, localAddress } : wsOptions);
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`no subscription within 20 s: ${url}`)), 20_000);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.on("error", fail);
    ws.on("close", (code, reason) => fail(new Error(`closed ${code} ${reason.toString()}`)));
    ws.on("message", (raw) => {
      const text = raw.toString();
      if (settled) return onFrame(text);
      let isReady: boolean;
      try {
        isReady = ready(JSON.parse(text) as Record<string, unknown>, ws);
      } catch (err) {
        return fail(err as Error);
      }
      if (isReady) {
        settled = true;
        clearTimeout(timer);
        resolve(ws);
      }
    });
  });
}

const pusherUrl = (port: number) =>
  `ws://127.0.0.1:${port}/app/${APP.key}?protocol=7&client=bench&version=1.0`;

export const pusher: Dialect & {
  /** Opens one connection that subscribes to nothing: the cost of a bare connection. */
  connect(port: number): Promise<WebSocket>;
} = {
  connect(port) {
    return open(
      pusherUrl(port),
      (msg) => msg.event === "pusher:connection_established",
      () => {},
    );
  },
  subscribe(port, _n, onFrame, channel = CHANNEL, localAddress) {
    return open(
      pusherUrl(port),
      (msg, ws) => {
        if (msg.event === "pusher:connection_established") {
          ws.send(JSON.stringify({ event: "pusher:subscribe", data: { channel } }));
        }
        if (msg.event === "pusher:error") throw new Error(`pusher:error ${JSON.stringify(msg)}`);
        return msg.event === "pusher_internal:subscription_succeeded";
      },
      onFrame,
      localAddress,
    );
  },
  async publisher(port) {
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    const client = new Pusher({
      appId: APP.id,
      key: APP.key,
      secret: APP.secret,
      host: "127.0.0.1",
      port: String(port),
      useTLS: false,
      agent,
    });
    return {
      async publish(data, channel = CHANNEL) {
        const res = await client.trigger(channel, "bench", data);
        // Soketi answers errors with status 200; a body with an error still counts.
        const body = await res.text();
        if (body.includes('"error"')) throw new Error(`publish refused: ${body}`);
      },
      close: () => agent.destroy(),
    };
  },
};

function heraldUrl(port: number, userId: string): string {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const token = signCompact(APP.secret, userId, CHANNEL, exp);
  const q = new URLSearchParams({ key: APP.key, user_id: userId, streams: CHANNEL, token });
  return `ws://127.0.0.1:${port}/ws?${q}`;
}

export const herald: Dialect = {
  subscribe(port, n, onFrame, channel = CHANNEL, localAddress) {
    if (channel !== CHANNEL) throw new Error("the Herald bench client uses one channel");
    return open(
      heraldUrl(port, `u${n}`),
      (msg, ws) => {
        if (msg.type === "auth_ok") {
          ws.send(JSON.stringify({ type: "subscribe", ref: "s", payload: { stream_id: CHANNEL } }));
        }
        if (msg.type === "auth_error" || msg.type === "error")
          throw new Error(`herald: ${JSON.stringify(msg)}`);
        return msg.type === "subscribed";
      },
      onFrame,
      localAddress,
    );
  },
  async publisher(port) {
    const pending = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
    const ws = await open(
      heraldUrl(port, "publisher"),
      (msg) => msg.type === "auth_ok",
      (text) => {
        const msg = JSON.parse(text) as { type: string; ref?: string; payload: unknown };
        if (msg.ref === undefined) return;
        const p = pending.get(msg.ref);
        if (!p) return;
        pending.delete(msg.ref);
        if (msg.type === "event.ack") p.resolve();
        else p.reject(new Error(`publish refused: ${text}`));
      },
    );
    let seq = 0;
    return {
      publish(data) {
        const ref = `p${++seq}`;
        return new Promise<void>((resolve, reject) => {
          pending.set(ref, { resolve, reject });
          ws.send(
            JSON.stringify({
              type: "event.publish",
              ref,
              payload: { stream_id: CHANNEL, type: "bench", body: { d: data } },
            }),
          );
        });
      },
      close: () => ws.close(),
    };
  },
};

export const dialects: Record<DialectName, Dialect> = { pusher, herald };
