import {
  looksLikeJwt,
  safeEqual,
  TokenError,
  unverifiedAppKey,
  verifyJwt,
} from "../../../../../shared/src/auth/jwt.js";
import { channelAllowed, isValidUserId, USER_ID_RULE } from "../../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import type { AppDirectory } from "../../core/dialect.js";

export type Operation = "subscribe" | "publish" | "presence" | "history";

const OPERATIONS: readonly Operation[] = ["subscribe", "publish", "presence", "history"];

/** Channel pattern (`*` suffix = prefix, `"*"` = all) → operations allowed on it. */
export type Capability = ReadonlyMap<string, ReadonlySet<Operation>>;

export interface FoonyGrant {
  app: AppConfig;
  clientId: string | undefined;
  capability: Capability;
  /** Token expiry (ms since the epoch); undefined for key auth, which does not expire. */
  expiresAtMs: number | undefined;
}

const EVERYTHING: Capability = new Map([["*", new Set(OPERATIONS)]]);

export function allows(capability: Capability, channel: string, op: Operation): boolean {
  for (const [pattern, ops] of capability) {
    if (ops.has(op) && channelAllowed(channel, [pattern])) return true;
  }
  return false;
}

/** The `auth` frame's credential: exactly one of `key` and `token` (the codec checks). Throws TokenError. */
export async function verifyCredential(
  apps: AppDirectory,
  credential: { key?: string | undefined; token?: string | undefined },
): Promise<FoonyGrant> {
  if (credential.key !== undefined) return verifyKey(apps, credential.key);
  if (credential.token !== undefined) return verifyToken(apps, credential.token);
  throw new TokenError("auth needs exactly one of token or key");
}

/**
 * `key` = "APP_KEY:SECRET": a trusted server-side client with every
 * capability. The secret is the app secret or one of its API keys.
 */
export function verifyKey(apps: AppDirectory, key: string): FoonyGrant {
  const colon = key.indexOf(":");
  const app = colon > 0 ? apps.byKey(key.slice(0, colon)) : undefined;
  if (!app) throw new TokenError("unknown app key");
  const secret = key.slice(colon + 1);
  let ok = false;
  // No early exit: every comparison runs so timing does not tell which secret matched.
  for (const s of [app.secret, ...app.apiKeys]) ok = safeEqual(s, secret) || ok;
  if (!ok) throw new TokenError("wrong secret for this app key");
  return { app, clientId: undefined, capability: EVERYTHING, expiresAtMs: undefined };
}

/** A JWT whose header `kid` (or `iss` claim) names the app key. Throws TokenError. */
export async function verifyToken(apps: AppDirectory, token: string): Promise<FoonyGrant> {
  if (!looksLikeJwt(token)) throw new TokenError("malformed token");
  const appKey = unverifiedAppKey(token);
  const app = appKey === undefined ? undefined : apps.byKey(appKey);
  if (!app) throw new TokenError("token names no known app key (kid header or iss claim)");
  const claims = await verifyJwt(token, app);
  const clientId = claims.clientId ?? claims.sub;
  if (clientId !== undefined && !isValidUserId(clientId))
    throw new TokenError(`clientId/sub must be ${USER_ID_RULE}`);
  return {
    app,
    clientId,
    capability: parseCapability(claims.capability),
    expiresAtMs: claims.exp * 1000,
  };
}

/** A token without `capability` may connect but do nothing on any channel. */
function parseCapability(v: unknown): Capability {
  if (v === undefined) return new Map();
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new TokenError("capability must be an object of channel pattern → operations");
  const out = new Map<string, Set<Operation>>();
  for (const [pattern, ops] of Object.entries(v)) {
    if (!Array.isArray(ops)) throw new TokenError(`capability ${pattern} must list operations`);
    const set = new Set<Operation>();
    for (const op of ops) {
      if (op === "*") for (const o of OPERATIONS) set.add(o);
      else if (OPERATIONS.includes(op as Operation)) set.add(op as Operation);
      else throw new TokenError(`unknown capability operation ${JSON.stringify(op).slice(0, 40)}`);
    }
    out.set(pattern, set);
  }
  return out;
}
