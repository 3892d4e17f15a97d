import { safeEqual } from "../../../../../shared/src/auth/jwt.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import { hmacHex, md5Hex } from "./auth.js";
import { PusherHttpError } from "./codes.js";

/** Pusher accepts request timestamps this far from its clock, either way. */
export const TIMESTAMP_WINDOW_SEC = 600;

/**
 * The string Pusher signs: `METHOD\nPATH\nQUERY`, QUERY being every
 * parameter except `auth_signature`, keys lower-cased and sorted, as
 * `key=value` joined with `&` (values unescaped).
 */
export function stringToSign(method: string, path: string, query: URLSearchParams): string {
  const params = new Map<string, string>();
  for (const [k, v] of query) {
    const key = k.toLowerCase();
    if (key !== "auth_signature") params.set(key, v);
  }
  const sorted = [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${method.toUpperCase()}\n${path}\n${sorted.map(([k, v]) => `${k}=${v}`).join("&")}`;
}

/** Signs a request as the Pusher server SDKs do (for tests and TS backends). */
export function signRequest(
  app: AppConfig,
  method: string,
  path: string,
  params: Record<string, string>,
  body: string,
  nowSec: number,
): URLSearchParams {
  const query = new URLSearchParams({
    ...params,
    auth_key: app.key,
    auth_timestamp: String(nowSec),
    auth_version: "1.0",
  });
  if (body !== "") query.set("body_md5", md5Hex(body));
  query.set("auth_signature", hmacHex(app.secret, stringToSign(method, path, query)));
  return query;
}

/** Checks a signed HTTP API request; throws PusherHttpError(401) with Pusher's reason. */
export function verifyRequest(
  app: AppConfig,
  method: string,
  path: string,
  query: URLSearchParams,
  body: Buffer,
  nowSec: number,
): void {
  const get = verifyEnvelope(app, query, nowSec);
  const md5 = get("body_md5");
  if (body.byteLength > 0 || md5 !== undefined) {
    if (md5 === undefined || !safeEqual(md5, md5Hex(body)))
      throw new PusherHttpError(401, "body_md5 does not match the body");
  }
  const signature = get("auth_signature") ?? "";
  const expected = hmacHex(app.secret, stringToSign(method, path, query));
  if (!safeEqual(signature, expected)) {
    throw new PusherHttpError(401, "Invalid signature: check your app secret and signing code");
  }
}

/**
 * The checks that need no body (key, timestamp, version), run before a body
 * is read so a request that cannot be valid never gets the server to buffer one.
 * Returns the parameters by lower-cased name.
 */
export function verifyEnvelope(
  app: AppConfig,
  query: URLSearchParams,
  nowSec: number,
): (name: string) => string | undefined {
  // One value per name, matched case-insensitively as the signature is: a repeat
  // would let the checks below read one value while the signature covers another.
  const params = new Map<string, string>();
  for (const [k, v] of query) {
    const name = k.toLowerCase();
    if (params.has(name))
      throw new PusherHttpError(401, `Parameter ${name.slice(0, 50)} given more than once`);
    params.set(name, v);
  }
  const get = (k: string) => params.get(k);
  const key = get("auth_key");
  if (key === undefined || !safeEqual(key, app.key))
    throw new PusherHttpError(401, "Unknown auth_key");
  const ts = get("auth_timestamp");
  if (ts === undefined || !/^[0-9]{1,12}$/.test(ts))
    throw new PusherHttpError(401, "auth_timestamp is required");
  if (Math.abs(nowSec - Number(ts)) > TIMESTAMP_WINDOW_SEC) {
    throw new PusherHttpError(
      401,
      `Timestamp expired: Given timestamp (${ts}) not within ${TIMESTAMP_WINDOW_SEC}s of server time (${nowSec})`,
    );
  }
  if (get("auth_version") !== "1.0") throw new PusherHttpError(401, "auth_version must be 1.0");
  return get;
}
