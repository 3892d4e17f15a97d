import { SignJWT } from "jose";
import { TEST_APP } from "./harness.js";
import { TestClient } from "./ws-client.js";

export interface Reply {
  requestId: string | number | null;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

export interface Notification {
  method: "message";
  params: {
    id: string;
    seq: number;
    createTime: string;
    channel: string;
    event: string;
    payload: unknown;
  };
}

/** A Broadcaster JWT; `claims` override the defaults (all channels, both scopes). */
export async function broadcasterJwt(
  claims: Record<string, unknown> = {},
  { ttlSec = 3600, iatOffsetSec = 0, secret = TEST_APP.secret, aud = "broadcaster" } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ authorizedChannels: ["*"], scope: ["subscribe", "publish"], ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(typeof claims.sub === "string" ? claims.sub : "user-1")
    .setAudience(aud)
    .setIssuedAt(now + iatOffsetSec)
    .setExpirationTime(now + ttlSec)
    .sign(new TextEncoder().encode(secret));
}

let ids = 0;

/** Sends a request and waits for the reply carrying its id. */
export async function call(
  c: TestClient,
  method: string,
  params: Record<string, unknown> = {},
): Promise<Reply> {
  const id = ++ids;
  c.send({ id, method, params });
  return c.next<Reply>((f) => f.requestId === id);
}

/** Connects to `/broadcaster/app-key` and authenticates with `token`. */
export async function broadcasterConnect(
  url: (path: string) => string,
  token: string | Promise<string>,
): Promise<TestClient> {
  const c = await TestClient.connect(url(`/broadcaster/${TEST_APP.key}`));
  const r = await call(c, "auth", { token: await token });
  if (!r.result) throw new Error(`auth failed: ${JSON.stringify(r)}`);
  return c;
}

export const isMessage =
  (pred: (p: Notification["params"]) => boolean = () => true) =>
  (f: Notification) =>
    f.method === "message" && pred(f.params);
