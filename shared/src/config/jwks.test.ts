import { generateKeyPairSync } from "node:crypto";
import { createLocalJWKSet, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { at, expectDefined } from "../../test/defined.js";
import { ConfigError, loadConfig } from "./load.js";

const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ecPublic = ec.publicKey.export({ format: "jwk" });
const rsaSmall = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({
  format: "jwk",
});

function load(jwks: unknown) {
  return loadConfig({ TIDINGS_APPS: JSON.stringify([{ id: "a", key: "k", secret: "s", jwks }]) });
}

function problemsFor(jwks: unknown): string[] {
  try {
    load(jwks);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error("config was accepted");
}

describe("jwks at start", () => {
  it("accepts public keys that jose then verifies tokens with", async () => {
    const config = load({ keys: [{ ...ecPublic, kid: "k1", alg: "ES256", use: "sig" }] });
    const jwt = await new SignJWT({ sub: "u" })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setExpirationTime("1m")
      .sign(ec.privateKey);
    const keys = expectDefined(at(config.apps, 0).jwks, "the app's jwks")
      .keys as unknown as Parameters<typeof createLocalJWKSet>[0]["keys"];
    expect((await jwtVerify(jwt, createLocalJWKSet({ keys }))).payload.sub).toBe("u");
  });

  it("reports each bad key with its path, without quoting key material", () => {
    const problems = problemsFor({
      keys: [
        { ...ecPublic, y: "AAAA" },
        { kty: "oct", k: "c2VjcmV0" },
        ec.privateKey.export({ format: "jwk" }),
        rsaSmall,
        { ...ecPublic, alg: "RS256" },
        { kty: "nope" },
      ],
    });
    expect(problems).toEqual([
      "TIDINGS_APPS[0].jwks.keys[0]: not a valid RSA, EC or OKP public key (kty EC)",
      "TIDINGS_APPS[0].jwks.keys[1]: holds private or symmetric key material; list public keys only",
      "TIDINGS_APPS[0].jwks.keys[2]: holds private or symmetric key material; list public keys only",
      "TIDINGS_APPS[0].jwks.keys[3]: RSA key has 1024 bits; at least 2048 needed",
      "TIDINGS_APPS[0].jwks.keys[4].alg: this key verifies ES256, not RS256",
      "TIDINGS_APPS[0].jwks.keys[5]: not a valid RSA, EC or OKP public key (kty nope)",
    ]);
    expect(problems.join("\n")).not.toContain(String(ecPublic.x));
  });

  it("names the shape it wants for a malformed set", () => {
    expect(problemsFor([ecPublic])).toEqual(['TIDINGS_APPS[0].jwks: must be {"keys":[...]}']);
    expect(problemsFor({ keys: [] })).toEqual([
      "TIDINGS_APPS[0].jwks.keys: must be a non-empty array of JWKs",
    ]);
    expect(problemsFor({ key: [ecPublic] })[0]).toMatch(
      /^TIDINGS_APPS\[0\]\.jwks\.key: unknown field \(did you mean keys\?\)/,
    );
  });
});
