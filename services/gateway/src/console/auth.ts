import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { AppDirectory } from "../core/dialect.js";

/** What a console session may see and do: the whole cluster, or one app. */
export type Scope = { kind: "cluster" } | { kind: "app"; appId: string };

export interface Session {
  id: string;
  scope: Scope;
  /** The name the operator gave at login: who did it, in the action log. */
  who: string;
  /** Expiry, ms since the epoch. */
  exp: number;
}

export const SESSION_COOKIE = "tidings_console";
const WHO = /^[A-Za-z0-9 ._@-]{1,64}$/;

/** Equal-length digests, so neither the content nor the length of a secret leaks through timing. */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Console logins and sessions. A session is a signed cookie (HMAC with a
 * key derived from the console secret), not server state: every gateway
 * with the same secret accepts it, so a console behind a load balancer
 * keeps working whichever gateway answers. The cookie carries no secret;
 * changing the console secret ends every session.
 */
export class ConsoleAuth {
  private readonly key: Buffer;
  /** Logged-out sessions, until they would have expired anyway (this gateway only). */
  private readonly revoked = new Map<string, number>();

  constructor(
    private readonly consoleSecret: string,
    private readonly apps: AppDirectory,
    private readonly sessionMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.key = createHmac("sha256", consoleSecret).update("tidings-console-session-v1").digest();
  }

  /**
   * The console secret logs in to the cluster; an app's secret (with its app
   * id) to that app only. Null when neither matches. Both comparisons run
   * whatever the input, so timing does not tell which part was wrong.
   */
  login(secret: string, appId: string | undefined, who: string | undefined): Session | null {
    const name = who !== undefined && WHO.test(who) ? who : "operator";
    const app = appId ? this.apps.byId(appId) : undefined;
    const cluster = secretsEqual(secret, this.consoleSecret);
    // An unknown app still costs a comparison, against a value nobody knows.
    const appOk = secretsEqual(secret, app?.secret ?? randomBytes(16).toString("hex"));
    let scope: Scope | undefined;
    if (appId) scope = app && appOk ? { kind: "app", appId: app.id } : undefined;
    else if (cluster) scope = { kind: "cluster" };
    if (!scope) return null;
    return {
      id: randomBytes(16).toString("base64url"),
      scope,
      who: name,
      exp: this.now() + this.sessionMs,
    };
  }

  /** The cookie value for a session. */
  seal(session: Session): string {
    const body = Buffer.from(JSON.stringify(session)).toString("base64url");
    return `${body}.${this.mac(body)}`;
  }

  /** The session a cookie holds, or null if it is forged, expired or logged out. */
  open(cookie: string | undefined): Session | null {
    if (!cookie) return null;
    const dot = cookie.indexOf(".");
    if (dot < 1) return null;
    const body = cookie.slice(0, dot);
    const mac = Buffer.from(cookie.slice(dot + 1));
    const expected = Buffer.from(this.mac(body));
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return null;
    let s: Session;
    try {
      s = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Session;
    } catch {
      return null;
    }
    if (typeof s.exp !== "number" || s.exp <= this.now() || this.revoked.has(s.id)) return null;
    if (s.scope.kind === "app" && !this.apps.byId(s.scope.appId)) return null;
    return s;
  }

  revoke(session: Session): void {
    const now = this.now();
    for (const [id, exp] of this.revoked) if (exp <= now) this.revoked.delete(id);
    this.revoked.set(session.id, session.exp);
  }

  /** The CSRF token of a session: sent once in a JSON answer, echoed in a header on every action. */
  csrfOf(session: Session): string {
    return this.mac(`csrf\u0000${session.id}`);
  }

  checkCsrf(session: Session, token: string | undefined): boolean {
    if (!token) return false;
    const a = Buffer.from(token);
    const b = Buffer.from(this.csrfOf(session));
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private mac(text: string): string {
    return createHmac("sha256", this.key).update(text).digest("base64url");
  }
}

/** Apps a session may see. */
export function appsInScope(scope: Scope, apps: AppDirectory): string[] {
  return scope.kind === "cluster" ? apps.all().map((a) => a.id) : [scope.appId];
}

export function inScope(scope: Scope, appId: string): boolean {
  return scope.kind === "cluster" || scope.appId === appId;
}

/**
 * Failed logins per client address: a few a minute, then refused until the
 * minute is over, so a secret cannot be guessed at line speed.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, { n: number; until: number }>();

  constructor(
    private readonly perMinute = 10,
    private readonly now: () => number = Date.now,
  ) {}

  allowed(address: string): boolean {
    const f = this.failures.get(address);
    return !f || f.until <= this.now() || f.n < this.perMinute;
  }

  failed(address: string): void {
    const now = this.now();
    if (this.failures.size > 10_000) {
      for (const [a, f] of this.failures) if (f.until <= now) this.failures.delete(a);
    }
    const f = this.failures.get(address);
    if (!f || f.until <= now) this.failures.set(address, { n: 1, until: now + 60_000 });
    else f.n++;
  }
}
