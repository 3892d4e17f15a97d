import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { at } from "../../test/defined.js";
import type { AppConfig } from "../config/apps.js";
import { loadConfig } from "../config/load.js";
import { safeEqual, TokenError, unverifiedAppKey, verifyJwt } from "./jwt.js";

const base = at(loadConfig({}).apps, 0, "the development app");
const now = () => Math.floor(Date.now() / 1000);
const hs = (
  claims: Record<string, unknown>,
  secret = base.secret,
  header: Record<string, unknown> = {},
) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", ...header })
    .sign(new TextEncoder().encode(secret));

describe("verifyJwt", () => {
  it("accepts HS256 signed with the app secret and returns the claims", async () => {
    const claims = await verifyJwt(await hs({ sub: "u", exp: now() + 60, x: 1 }), base);
    expect(claims).toMatchObject({ sub: "u", x: 1 });
  });

  it("rejects another secret, a missing exp, an expired token and garbage", async () => {
    await expect(verifyJwt(await hs({ sub: "u", exp: now() + 60 }, "other"), base)).rejects.toThrow(
      TokenError,
    );
    await expect(verifyJwt(await hs({ sub: "u" }), base)).rejects.toThrow(/exp/);
    const expired = verifyJwt(await hs({ sub: "u", exp: now() - 10 }), base);
    await expect(expired).rejects.toMatchObject({ expired: true });
    await expect(verifyJwt("a.b.c", base)).rejects.toThrow(/malformed/);
  });

  it("checks the audience when asked", async () => {
    const token = await hs({ sub: "u", exp: now() + 60, aud: "broadcaster" });
    await expect(verifyJwt(token, base, { audience: "broadcaster" })).resolves.toBeDefined();
    await expect(verifyJwt(token, base, { audience: "other" })).rejects.toThrow(TokenError);
  });

  it.each(["RS256", "ES256"] as const)(
    "accepts %s with a key from the app's JWKS, and only then",
    async (alg) => {
      const { publicKey, privateKey } = await generateKeyPair(alg);
      const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg };
      const app: AppConfig = { ...base, jwks: { keys: [jwk] } };
      const token = await new SignJWT({ sub: "u", exp: now() + 60 })
        .setProtectedHeader({ alg, kid: "k1" })
        .sign(privateKey);
      expect((await verifyJwt(token, app)).sub).toBe("u");
      await expect(verifyJwt(token, base)).rejects.toThrow(/not accepted/);
      const stranger = await generateKeyPair(alg);
      const forged = await new SignJWT({ sub: "u", exp: now() + 60 })
        .setProtectedHeader({ alg, kid: "k1" })
        .sign(stranger.privateKey);
      await expect(verifyJwt(forged, app)).rejects.toThrow(TokenError);
    },
  );

  it("refuses alg none", async () => {
    const body = Buffer.from(JSON.stringify({ sub: "u", exp: now() + 60 })).toString("base64url");
    const head = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
    await expect(verifyJwt(`${head}.${body}.`, base)).rejects.toThrow(TokenError);
  });
});

describe("helpers", () => {
  it("reads the app key from kid, else iss, without verifying", async () => {
    expect(unverifiedAppKey(await hs({ exp: 1 }, "x", { kid: "app-key" }))).toBe("app-key");
    expect(unverifiedAppKey(await hs({ exp: 1, iss: "from-iss" }, "x"))).toBe("from-iss");
    expect(unverifiedAppKey("nonsense")).toBeUndefined();
  });

  it("compares signatures for equality only", () => {
    expect(safeEqual("abc", "abc")).toBe(true);
    expect(safeEqual("abc", "abd")).toBe(false);
    expect(safeEqual("abc", "abcd")).toBe(false);
  });
});
