import { SignJWT } from "jose";
import { TEST_APP } from "./harness.js";
import { TestClient } from "./ws-client.js";

export type FoonyFrame = { t: string; id?: number; [k: string]: unknown };

/** A Foony JWT naming the app by `kid` (or by `iss` with `via: "iss"`). */
export async function foonyJwt(
  claims: Record<string, unknown> = {},
  { ttlSec = 3600, secret = TEST_APP.secret, key = TEST_APP.key, via = "kid" } = {},
): Promise<string> {
  const jwt = new SignJWT({ capability: { "*": ["*"] }, ...claims })
    .setProtectedHeader(via === "kid" ? { alg: "HS256", kid: key } : { alg: "HS256" })
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec);
  if (via === "iss") jwt.setIssuer(key);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** The trusted server-side credential. */
export const appKeyAuth = (clientId?: string) => ({
  t: "auth",
  key: `${TEST_APP.key}:${TEST_APP.secret}`,
  ...(clientId === undefined ? {} : { clientId }),
});

/** Connects to /realtime, sends `auth`, waits for `connected`. */
export async function foonyConnect(
  url: (path: string) => string,
  auth: Record<string, unknown> | Promise<string>,
): Promise<TestClient & { connected: FoonyFrame }> {
  const c = await TestClient.connect(url("/realtime"));
  c.send(auth instanceof Promise ? { t: "auth", token: await auth } : auth);
  const connected = await c.next<FoonyFrame>((f) => f.t === "connected" || f.t === "err");
  if (connected.t !== "connected") throw new Error(`auth failed: ${JSON.stringify(connected)}`);
  return Object.assign(c, { connected });
}

let ids = 0;

/** Sends a request with a fresh id and waits for the frame echoing it (ack, err, histRes). */
export async function req(c: TestClient, frame: Record<string, unknown>): Promise<FoonyFrame> {
  const id = ++ids;
  c.send({ ...frame, id });
  return c.next<FoonyFrame>((f) => f.id === id);
}

export const isT =
  (t: string, pred: (f: FoonyFrame) => boolean = () => true) =>
  (f: FoonyFrame) =>
    f.t === t && pred(f);
