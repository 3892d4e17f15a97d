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
  for (const [k, v] of query) params.set(k.toLowerCase(), v);
  return signedString(method, path, params);
}

/** `stringToSign` of parameters already keyed by lower-cased name. */
function signedString(method: string, path: string, params: ReadonlyMap<string, string>): string {
  const sorted: [string, string][] = [];
  for (const entry of params) if (entry[0] !== "auth_signature") sorted.push(entry);
  sorted.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let query = "";
  for (const [k, v] of sorted) query += query === "" ? `${k}=${v}` : `&${k}=${v}`;
  return `${method.toUpperCase()}\n${path}\n${query}`;
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
  const query = new URLSearchParams(params);
  query.set("auth_key", app.key);
  query.set("auth_timestamp", String(nowSec));
  query.set("auth_version", "1.0");
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
  verifySignature(app, method, path, verifyEnvelope(app, query, nowSec), body);
}

/**
 * The checks that need the body (its MD5 and the signature), on the
 * parameters `verifyEnvelope` returned for the same request.
 */
export function verifySignature(
  app: AppConfig,
  method: string,
  path: string,
  params: SignedParams,
  body: Buffer,
): void {
  const md5 = params.get("body_md5");
  if (body.byteLength > 0 || md5 !== undefined) {
    if (md5 === undefined || !safeEqual(md5, md5Hex(body)))
      throw new PusherHttpError(401, "body_md5 does not match the body");
  }
  const signature = params.get("auth_signature") ?? "";
  const expected = hmacHex(app.secret, signedString(method, path, params));
  if (!safeEqual(signature, expected)) {
    throw new PusherHttpError(401, "Invalid signature: check your app secret and signing code");
  }
}

/** A request's query parameters by lower-cased name, each given once (`verifyEnvelope`). */
export type SignedParams = ReadonlyMap<string, string>;

/**
 * The checks that need no body (key, timestamp, version), run before a body
 * is read so a request that cannot be valid never gets the server to buffer one.
 * Returns the parameters by lower-cased name, for `verifySignature`.
 */
export function verifyEnvelope(
  app: AppConfig,
  query: URLSearchParams,
  nowSec: number,
): SignedParams {
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
  return params;
}
