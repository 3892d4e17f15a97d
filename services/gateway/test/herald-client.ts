import { SignJWT } from "jose";
import { signCompact } from "../src/dialects/herald/token.js";
import { TEST_APP } from "./harness.js";
import { TestClient } from "./ws-client.js";

export type Frame = { type: string; ref?: string | number; payload: Record<string, unknown> };

/** A Herald URL with a compact HMAC token for `userId` and `streams`. */
export function heraldUrl(
  base: (path: string) => string,
  userId: string,
  streams: string[],
  { ttlSec = 3600, secret = TEST_APP.secret, key = TEST_APP.key } = {},
): string {
  const exp = Math.floor(Date.now() / 1000) + ttlSec;
  const s = streams.join(",");
  const token = signCompact(secret, userId, s, exp);
  const q = new URLSearchParams({ key, user_id: userId, streams: s, token });
  return base(`/ws?${q}`);
}

export async function heraldJwt(
  claims: Record<string, unknown>,
  { ttlSec = 3600, secret = TEST_APP.secret } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec)
    .sign(new TextEncoder().encode(secret));
}

/** Connects and waits for auth_ok. */
export async function heraldConnect(url: string): Promise<TestClient> {
  const c = await TestClient.connect(url);
  await c.next<Frame>((f) => f.type === "auth_ok");
  return c;
}

let refs = 0;

/** Sends a request and waits for the reply (or error) carrying its ref. */
export async function request(
  c: TestClient,
  type: string,
  payload: Record<string, unknown>,
  timeoutMs = 5000,
): Promise<Frame> {
  const ref = `r${++refs}`;
  c.send({ type, ref, payload });
  return c.next<Frame>((f) => f.ref === ref, timeoutMs);
}

export const isType =
  (type: string, pred: (p: Record<string, unknown>) => boolean = () => true) =>
  (f: Frame) =>
    f.type === type && pred(f.payload);
