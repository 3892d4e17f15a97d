import WebSocket from "ws";
import { signCompact } from "../../../services/gateway/src/dialects/herald/token.js";
import { TEST_APP, type TestGateway } from "../../../services/gateway/test/harness.js";
import type { Emitter } from "../src/emitter.js";
import { type ClientOptions, type HeraldEvent, type Stream, TidingsClient } from "../src/index.js";

/** A compact Herald grant for `user` and `streams`, as a backend would mint it. */
export function grant(user: string, streams: string[], ttlSec = 3600) {
  const exp = Math.floor(Date.now() / 1000) + ttlSec;
  return {
    token: signCompact(TEST_APP.secret, user, streams.join(","), exp),
    userId: user,
    streams,
  };
}

let n = 0;
/** Names no other test uses: the gateways outlive tests. */
export const unique = (what: string) => `${what}-${process.pid}-${++n}`;

const open = new Set<TidingsClient>();

/** Closes every client `client()` made; call it in afterEach. */
export function closeClients(): void {
  for (const c of open) c.close();
  open.clear();
}

/** A client on Node 20's `ws` with fast backoff, closed by closeClients(). */
export function client(
  url: ClientOptions["url"],
  user: string,
  streams: string[],
  options: Partial<ClientOptions> = {},
): TidingsClient {
  const c = new TidingsClient({
    url,
    key: TEST_APP.key,
    token: () => grant(user, streams),
    WebSocket: WebSocket as unknown as ClientOptions["WebSocket"],
    backoff: { baseMs: 50, maxMs: 500 },
    ...options,
  });
  open.add(c);
  return c;
}

/** Every event a stream's `event` listeners get, in delivery order. */
export function collect(stream: Stream): HeraldEvent[] {
  const seen: HeraldEvent[] = [];
  stream.on("event", (e) => {
    seen.push(e);
  });
  return seen;
}

/** Closes the gateway side of every Herald connection of `user` (as a drain would, 1012). */
export function dropUser(gw: TestGateway, user: string, code = 1012): number {
  let closed = 0;
  for (const conn of gw.gateway.server.connections) {
    if (conn.userId === user && !conn.closed) {
      conn.close(code, "test closes it");
      closed++;
    }
  }
  return closed;
}

/** Resolves with the arguments of the first `event` emission that satisfies `pred`. */
export function nextEmit<E extends { [K in keyof E]: unknown[] }, K extends keyof E>(
  emitter: Emitter<E>,
  event: K,
  pred: (...args: E[K]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<E[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(event)}`));
    }, timeoutMs);
    const off = emitter.on(event, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}
