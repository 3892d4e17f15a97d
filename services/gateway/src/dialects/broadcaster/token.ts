import { TokenError, verifyJwt } from "../../../../../shared/src/auth/jwt.js";
import { isValidUserId, USER_ID_RULE } from "../../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";

export type Scope = "subscribe" | "publish";

export interface BroadcasterGrant {
  userId: string;
  /** Channel names; an entry ending in `*` grants by prefix (`channelAllowed`). */
  channels: string[];
  scopes: ReadonlySet<Scope>;
  /** When the token stops being accepted, leeway included (ms since the epoch). */
  expiresAtMs: number;
}

/** Clock skew tolerated on exp and iat, as the spec allows. */
export const LEEWAY_SEC = 60;
const SCOPES = new Set<string>(["subscribe", "publish"]);

/** Checks a Broadcaster JWT; throws TokenError with a message fit for the client. */
export async function verifyBroadcasterToken(
  app: AppConfig,
  token: string,
  nowMs: number,
): Promise<BroadcasterGrant> {
  const claims = await verifyJwt(token, app, {
    audience: "broadcaster",
    clockTolerance: LEEWAY_SEC,
    requiredClaims: ["sub", "iat"],
  });
  const sub = claims.sub;
  if (typeof sub !== "string" || sub === "") throw new TokenError("token has no sub");
  if (!isValidUserId(sub)) throw new TokenError(`sub must be ${USER_ID_RULE}`);
  // jose accepts any iat in the past; one from the future means a skewed or forged issuer.
  if (typeof claims.iat !== "number" || claims.iat * 1000 > nowMs + LEEWAY_SEC * 1000)
    throw new TokenError("token iat is in the future");
  const channels = claims.authorizedChannels;
  if (!Array.isArray(channels) || !channels.every((c) => typeof c === "string"))
    throw new TokenError("authorizedChannels must be an array of strings");
  const scopes = scopeList(claims.scope);
  return {
    userId: sub,
    channels: channels as string[],
    scopes,
    expiresAtMs: (claims.exp + LEEWAY_SEC) * 1000,
  };
}

/** The seed says an array; OAuth issuers write a space-separated string, so take both. */
function scopeList(v: unknown): Set<Scope> {
  const list = typeof v === "string" ? v.split(" ").filter((s) => s !== "") : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string"))
    throw new TokenError("scope must be an array of strings");
  for (const s of list) {
    if (!SCOPES.has(s)) throw new TokenError(`unknown scope ${JSON.stringify(s).slice(0, 40)}`);
  }
  return new Set(list as Scope[]);
}
