import { describe, expect, it } from "vitest";
import type { AppConfig } from "../../../../shared/src/config/apps.js";
import { expectDefined } from "../../../../shared/test/defined.js";
import type { AppDirectory } from "../core/dialect.js";
import { ConsoleAuth, LoginThrottle, secretsEqual } from "./auth.js";

const apps = [
  { id: "a1", key: "k1", secret: "secret-of-a1" },
  { id: "a2", key: "k2", secret: "secret-of-a2" },
] as unknown as AppConfig[];
const dir: AppDirectory = {
  byKey: (k) => apps.find((a) => a.key === k),
  byId: (id) => apps.find((a) => a.id === id),
  all: () => apps,
};
const SECRET = "console-secret-0123456789";

describe("console auth", () => {
  it("compares secrets whatever their lengths", () => {
    expect(secretsEqual("abc", "abc")).toBe(true);
    expect(secretsEqual("abc", "abcd")).toBe(false);
    expect(secretsEqual("", "x")).toBe(false);
  });

  it("logs in to the cluster with the console secret and to one app with its secret", () => {
    const auth = new ConsoleAuth(SECRET, dir, 60_000);
    expect(auth.login(SECRET, undefined, "ops")?.scope).toEqual({ kind: "cluster" });
    expect(auth.login("secret-of-a1", "a1", undefined)?.scope).toEqual({
      kind: "app",
      appId: "a1",
    });
    // An app's secret is no key to another app, nor to the cluster.
    expect(auth.login("secret-of-a1", "a2", undefined)).toBeNull();
    expect(auth.login("secret-of-a1", undefined, undefined)).toBeNull();
    expect(auth.login("wrong", undefined, undefined)).toBeNull();
    expect(auth.login(SECRET, "nope", undefined)).toBeNull();
  });

  it("keeps the operator's name only when it is a plain label", () => {
    const auth = new ConsoleAuth(SECRET, dir, 60_000);
    expect(auth.login(SECRET, undefined, "alice@ops")?.who).toBe("alice@ops");
    expect(auth.login(SECRET, undefined, "<script>")?.who).toBe("operator");
  });

  it("seals sessions that open until they expire, and refuses forged or revoked ones", () => {
    let now = 1_000_000;
    const auth = new ConsoleAuth(SECRET, dir, 60_000, () => now);
    const s = expectDefined(auth.login(SECRET, undefined, "ops"), "a session");
    const cookie = auth.seal(s);
    expect(cookie).not.toContain(SECRET);
    expect(auth.open(cookie)?.id).toBe(s.id);
    // Another console secret (another cluster, or a rotated secret) does not accept it.
    expect(new ConsoleAuth(`${SECRET}x`, dir, 60_000, () => now).open(cookie)).toBeNull();
    const [body, mac] = cookie.split(".");
    const widened = Buffer.from(JSON.stringify({ ...s, exp: s.exp + 1e9 })).toString("base64url");
    expect(auth.open(`${widened}.${mac}`)).toBeNull();
    expect(auth.open(`${body}.`)).toBeNull();
    expect(auth.open("garbage")).toBeNull();
    now += 60_000;
    expect(auth.open(cookie)).toBeNull();
    now -= 1;
    expect(auth.open(cookie)).not.toBeNull();
    auth.revoke(s);
    expect(auth.open(cookie)).toBeNull();
  });

  it("ties the CSRF token to the session", () => {
    const auth = new ConsoleAuth(SECRET, dir, 60_000);
    const a = expectDefined(auth.login(SECRET, undefined, undefined), "a session");
    const b = expectDefined(auth.login(SECRET, undefined, undefined), "a session");
    expect(auth.checkCsrf(a, auth.csrfOf(a))).toBe(true);
    expect(auth.checkCsrf(a, auth.csrfOf(b))).toBe(false);
    expect(auth.checkCsrf(a, "")).toBe(false);
    expect(auth.checkCsrf(a, undefined)).toBe(false);
  });

  it("throttles failed logins per address for a minute", () => {
    let now = 0;
    const t = new LoginThrottle(3, () => now);
    for (let i = 0; i < 3; i++) {
      expect(t.allowed("1.2.3.4")).toBe(true);
      t.failed("1.2.3.4");
    }
    expect(t.allowed("1.2.3.4")).toBe(false);
    expect(t.allowed("5.6.7.8")).toBe(true);
    now += 60_000;
    expect(t.allowed("1.2.3.4")).toBe(true);
  });
});
