/**
 * Checks an app's `jwks` at start, so a key that could never verify a token
 * fails the config instead of every login that meets it.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { unknownField } from "./suggest.js";

/** Algorithms a JWKS key may verify (`verifyJwt`); HS256 uses the app secret instead. */
export const JWKS_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "ES256",
  "ES384",
  "EdDSA",
] as const;

/** What each key type may carry; jose refuses RSA keys under 2048 bits. */
const CURVES: Record<string, string> = { "P-256": "ES256", "P-384": "ES384" };
const MIN_RSA_BITS = 2048;

export type Jwk = Record<string, unknown>;

/** Parses `{"keys":[...]}`; every problem names its path. Key material is never quoted. */
export function parseJwks(
  input: unknown,
  at: string,
  problems: string[],
): { keys: Jwk[] } | undefined {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    problems.push(`${at}: must be {"keys":[...]}`);
    return undefined;
  }
  const set = input as Record<string, unknown>;
  for (const k of Object.keys(set)) if (k !== "keys") problems.push(unknownField(at, k, ["keys"]));
  if (!Array.isArray(set.keys) || set.keys.length === 0) {
    problems.push(`${at}.keys: must be a non-empty array of JWKs`);
    return undefined;
  }
  const before = problems.length;
  for (const [i, jwk] of (set.keys as unknown[]).entries())
    checkJwk(jwk, `${at}.keys[${i}]`, problems);
  return problems.length === before ? { keys: set.keys as Jwk[] } : undefined;
}

function checkJwk(jwk: unknown, at: string, problems: string[]): void {
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) {
    problems.push(`${at}: must be a JWK object`);
    return;
  }
  const k = jwk as Jwk;
  if ("d" in k || "k" in k) {
    problems.push(`${at}: holds private or symmetric key material; list public keys only`);
    return;
  }
  if (k.use !== undefined && k.use !== "sig") problems.push(`${at}.use: must be "sig"`);
  if (k.kid !== undefined && typeof k.kid !== "string")
    problems.push(`${at}.kid: must be a string`);
  let key: KeyObject;
  try {
    // The same import jose performs when a token arrives, done once, now.
    key = createPublicKey({ key: k as never, format: "jwk" });
  } catch {
    problems.push(`${at}: not a valid RSA, EC or OKP public key (kty ${String(k.kty)})`);
    return;
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  let algs: readonly string[] = [];
  if (type === "rsa" || type === "rsa-pss") {
    algs = JWKS_ALGORITHMS.filter((a) => /^(RS|PS)/.test(a));
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS)
      problems.push(
        `${at}: RSA key has ${details.modulusLength} bits; at least ${MIN_RSA_BITS} needed`,
      );
  } else if (type === "ec") {
    const alg = CURVES[String(k.crv)];
    if (alg) algs = [alg];
    else problems.push(`${at}.crv: must be one of ${Object.keys(CURVES).join(", ")}`);
  } else if (type === "ed25519" || type === "ed448") {
    algs = ["EdDSA"];
  } else {
    problems.push(`${at}: a ${type} key cannot verify signatures`);
  }
  if (k.alg !== undefined && algs.length > 0 && !algs.includes(String(k.alg)))
    problems.push(`${at}.alg: this key verifies ${algs.join(", ")}, not ${String(k.alg)}`);
}
