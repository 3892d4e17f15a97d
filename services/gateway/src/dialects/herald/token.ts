import { createHmac } from "node:crypto";
import {
  looksLikeJwt,
  safeEqual,
  TokenError,
  verifyJwt,
} from "../../../../../shared/src/auth/jwt.js";
import { isValidUserId, USER_ID_RULE } from "../../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import type { Json } from "../../../../../shared/src/model.js";

export interface HeraldGrant {
  userId: string;
  /** Authorized stream ids; an entry ending in `*` grants by prefix. */
  streams: string[];
  /** Unix seconds. */
  expiresAt: number;
  watchlist: string[];
  userInfo?: Json | undefined;
  /** JWT grants match `*`-suffixed entries by prefix; compact tokens list exact ids. */
  prefixMatch: boolean;
}

/** The compact token's signature; exported for tests and for backends written in TS. */
export function signCompact(secret: string, userId: string, streams: string, exp: number): string {
  const sig = createHmac("sha256", secret).update(`${userId}\n${streams}\n${exp}`).digest("hex");
  return `${exp}.${sig}`;
}

/**
 * Checks a Herald token (compact HMAC or JWT) against the query it came
 * with. Throws TokenError with a message fit for `auth_error`.
 */
export async function verifyHeraldToken(
  app: AppConfig,
  token: string,
  userIdParam: string | null,
  streamsParam: string | null,
  nowSec: number,
): Promise<HeraldGrant> {
  if (looksLikeJwt(token)) {
    const claims = await verifyJwt(token, app);
    const sub = claims.sub;
    if (typeof sub !== "string" || sub === "") throw new TokenError("token has no sub");
    if (!isValidUserId(sub)) throw new TokenError(`sub must be ${USER_ID_RULE}`);
    if (userIdParam && userIdParam !== sub)
      throw new TokenError("user_id does not match the token");
    const streams = stringList(claims.streams, "streams");
    const watchlist =
      claims.watchlist === undefined ? [] : stringList(claims.watchlist, "watchlist");
    if (!watchlist.every(isValidUserId))
      throw new TokenError(`watchlist ids must be ${USER_ID_RULE}`);
    return {
      userId: sub,
      streams,
      expiresAt: claims.exp,
      watchlist,
      userInfo: claims.user_info as Json | undefined,
      prefixMatch: true,
    };
  }
  const m = /^([0-9]{1,12})\.([0-9a-f]{64})$/.exec(token);
  if (!m) throw new TokenError("malformed token");
  if (!userIdParam) throw new TokenError("user_id is required with a compact token");
  if (!isValidUserId(userIdParam)) throw new TokenError(`user_id must be ${USER_ID_RULE}`);
  // The signed text joins fields with "\n": one inside a field would let a token
  // minted for user "a\nb" be presented as user "a" with the rest shifted into streams.
  if (userIdParam.includes("\n") || streamsParam?.includes("\n"))
    throw new TokenError("user_id and streams must not contain a newline");
  const exp = Number(m[1]);
  const expected = signCompact(app.secret, userIdParam, streamsParam ?? "", exp);
  if (!safeEqual(expected, token)) throw new TokenError("bad signature");
  if (exp <= nowSec) throw new TokenError("token expired", true);
  return {
    userId: userIdParam,
    streams: streamsParam ? streamsParam.split(",") : [],
    expiresAt: exp,
    watchlist: [],
    prefixMatch: false,
  };
}

function stringList(v: unknown, name: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    throw new TokenError(`token claim ${name} must be an array of strings`);
  }
  return v as string[];
}
