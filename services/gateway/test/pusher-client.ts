import PusherServer from "pusher";
import PusherJs from "pusher-js";
import { TEST_APP } from "./harness.js";
import { TestClient } from "./ws-client.js";

// pusher-js ships ESM-style typings for a CommonJS build: under NodeNext the default
// import is typed as the module, while at runtime it is the class itself.
type PusherClass = typeof PusherJs.default;
export type Pusher = InstanceType<PusherClass>;
const PusherCtor = PusherJs as unknown as PusherClass;

/** A gateway to talk to: in-process (startTestGateway) or a spawned process. */
export type Target = { port: number; url: (path: string) => string };

/** 32 bytes, base64: lets the server SDK encrypt and authorize private-encrypted- channels. */
export const MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

/** The official server SDK pointed at a test gateway. */
export function pusherServer(
  gw: Target,
  { secret = TEST_APP.secret, appId = TEST_APP.id } = {},
): PusherServer {
  return new PusherServer({
    appId,
    key: TEST_APP.key,
    secret,
    host: "127.0.0.1",
    port: String(gw.port),
    useTLS: false,
    encryptionMasterKeyBase64: MASTER_KEY,
  });
}

export interface ClientOptions {
  /** Presence channel_data; absent for private channels. */
  member?: { user_id: string; user_info?: unknown };
  /** user_data for `signin()`. */
  user?: { id: string; watchlist?: string[]; [k: string]: unknown };
  /** Sign channels with this secret instead (to forge bad signatures). */
  secret?: string;
}

/**
 * A real pusher-js (Node build) client. Channel and user auth come from the
 * server SDK's `authorizeChannel`/`authenticateUser` in a customHandler, as a
 * backend's auth endpoint would compute them.
 */
export function pusherClient(gw: Target, options: ClientOptions = {}): Pusher {
  const signer = pusherServer(gw, { secret: options.secret ?? TEST_APP.secret });
  return new PusherCtor(TEST_APP.key, {
    cluster: "mt1",
    wsHost: "127.0.0.1",
    wsPort: gw.port,
    forceTLS: false,
    enabledTransports: ["ws"],
    channelAuthorization: {
      endpoint: "/unused",
      transport: "ajax",
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const data = channelName.startsWith("presence-") ? options.member : undefined;
          callback(null, signer.authorizeChannel(socketId, channelName, data as never));
        } catch (err) {
          callback(err as Error, null);
        }
      },
    },
    userAuthentication: {
      endpoint: "/unused",
      transport: "ajax",
      customHandler: ({ socketId }, callback) => {
        callback(null, signer.authenticateUser(socketId, options.user ?? { id: "nobody" }));
      },
    },
  });
}

export function connected(p: Pusher): Promise<string> {
  return new Promise((resolve, reject) => {
    if (p.connection.state === "connected") return resolve(p.connection.socket_id);
    const onChange = ({ current }: { current: string }) => {
      if (current === "connected") {
        p.connection.unbind("state_change", onChange);
        resolve(p.connection.socket_id);
      } else if (current === "failed" || current === "unavailable") {
        reject(new Error(`pusher-js ${current}`));
      }
    };
    p.connection.bind("state_change", onChange);
  });
}

/** POSTs a JSON body; the SDK's typings say string, but it JSON-encodes whatever it gets. */
export function postJson(server: PusherServer, path: string, body: unknown): Promise<Response> {
  return server.post({ path, body: body as string }) as unknown as Promise<Response>;
}

/** Subscribes and resolves with the subscription_succeeded data (members on presence). */
export function subscribe(
  p: Pusher,
  channel: string,
): Promise<{ channel: ReturnType<Pusher["subscribe"]>; data: unknown }> {
  const ch = p.subscribe(channel);
  return new Promise((resolve, reject) => {
    ch.bind("pusher:subscription_succeeded", (data: unknown) => resolve({ channel: ch, data }));
    ch.bind("pusher:subscription_error", (err: unknown) =>
      reject(Object.assign(new Error("subscription_error"), { data: err })),
    );
  });
}

/** Resolves with the next `event` on `ch` (data and metadata). */
export function nextEvent(
  ch: ReturnType<Pusher["subscribe"]>,
  event: string,
  timeoutMs = 5000,
): Promise<{ data: unknown; meta: { user_id?: string } | undefined }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} in ${timeoutMs} ms`)), timeoutMs);
    const handler = (data: unknown, meta?: { user_id?: string }) => {
      clearTimeout(t);
      ch.unbind(event, handler);
      resolve({ data, meta });
    };
    ch.bind(event, handler);
  });
}

/** A raw WebSocket on the Pusher endpoint that has read connection_established. */
export async function rawPusher(
  gw: Target,
  query = "protocol=7&client=js&version=8.6.0",
): Promise<{ c: TestClient; socketId: string }> {
  const c = await TestClient.connect(gw.url(`/app/${TEST_APP.key}?${query}`));
  const f = await c.next<PusherFrame>((x) => x.event === "pusher:connection_established");
  const data = JSON.parse(f.data as string) as { socket_id: string };
  return { c, socketId: data.socket_id };
}

export type PusherFrame = { event: string; channel?: string; data?: unknown; user_id?: string };

export const isEvent =
  (event: string, channel?: string) =>
  (f: PusherFrame): boolean =>
    f.event === event && (channel === undefined || f.channel === channel);

/** Parses a frame's data string, as pusher-js does. */
export function dataOf(f: PusherFrame): unknown {
  return typeof f.data === "string" ? JSON.parse(f.data) : f.data;
}
