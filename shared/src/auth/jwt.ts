import { timingSafeEqual } from "node:crypto";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import type { AppConfig } from "../config/apps.js";

export class TokenError extends Error {
  override name = "TokenError";
  constructor(
    message: string,
    readonly expired = false,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A verified token's claims: `exp` is required (and jose checks it is a number). */
export type VerifiedClaims = JWTPayload & { exp: number };

const hsKeys = new WeakMap<AppConfig, Uint8Array>();
const jwkSets = new WeakMap<AppConfig, ReturnType<typeof createLocalJWKSet>>();

/**
 * Verifies a JWT for an app: HS256 signed with the app secret, or, when the
 * app has a JWKS, RS256/ES256 (and friends) with one of its keys. Every
 * dialect goes through here so the rules cannot drift apart.
 */
export async function verifyJwt(
  token: string,
  app: AppConfig,
  options: Pick<JWTVerifyOptions, "audience" | "clockTolerance" | "requiredClaims"> = {},
): Promise<VerifiedClaims> {
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch (err) {
    throw new TokenError("malformed token", false, { cause: err });
  }
  try {
    // Object.assign, not `{ ...options, key }`: see `storedEvent` in model.ts.
    const verifyOptions: JWTVerifyOptions = Object.assign({}, options, {
      requiredClaims: ["exp", ...(options.requiredClaims ?? [])],
    });
    if (alg === "HS256") {
      let key = hsKeys.get(app);
      if (!key) {
        key = new TextEncoder().encode(app.secret);
        hsKeys.set(app, key);
      }
      return verified(
        (await jwtVerify(token, key, Object.assign({}, verifyOptions, { algorithms: ["HS256"] })))
          .payload,
      );
    }
    if (!app.jwks) throw new TokenError(`algorithm ${alg ?? "none"} not accepted for this app`);
    let set = jwkSets.get(app);
    if (!set) {
      set = createLocalJWKSet({
        keys: app.jwks.keys as unknown as Parameters<typeof createLocalJWKSet>[0]["keys"],
      });
      jwkSets.set(app, set);
    }
    return verified(
      (
        await jwtVerify(
          token,
          set,
          Object.assign({}, verifyOptions, {
            algorithms: ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"],
          }),
        )
      ).payload,
    );
  } catch (err) {
    if (err instanceof TokenError) throw err;
    if (err instanceof errors.JWTExpired)
      throw new TokenError("token expired", true, { cause: err });
    throw new TokenError(`invalid token: ${(err as Error).message}`, false, { cause: err });
  }
}

/** jose already refused a token without a numeric `exp` (required above); this says so to the types. */
function verified(payload: JWTPayload): VerifiedClaims {
  if (typeof payload.exp !== "number") throw new TokenError("token has no exp");
  return payload as VerifiedClaims;
}

/** Reads the `kid` (or, failing that, `iss`) without verifying: used to find the app. */
export function unverifiedAppKey(token: string): string | undefined {
  try {
    const header = decodeProtectedHeader(token);
    if (typeof header.kid === "string") return header.kid;
    const [, body] = token.split(".");
    const claims: unknown = JSON.parse(Buffer.from(body ?? "", "base64url").toString("utf8"));
    const iss = (claims as { iss?: unknown }).iss;
    return typeof iss === "string" ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** Constant-time string comparison for signatures (length leaks only). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}
