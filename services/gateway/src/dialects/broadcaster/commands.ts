import { TokenError } from "../../../../../shared/src/auth/jwt.js";
import { channelAllowed } from "../../../../../shared/src/channels.js";
import type { Connection } from "../../core/connection.js";
import type { GatewayContext } from "../../core/dialect.js";
import type { ChannelEncoder } from "../../core/hub.js";
import { runAt } from "../../core/timers.js";
import { encode, type Request, type RequestId, rfc3339 } from "./codec.js";
import { BroadcasterRequestError } from "./codes.js";
import { type BroadcasterGrant, type Scope, verifyBroadcasterToken } from "./token.js";

interface Subscription {
  id: string;
  /** Messages this subscription delivered; the next one carries seq + 1. */
  seq: number;
}

export interface BroadcasterSession {
  grant: BroadcasterGrant | undefined;
  /** The last grant ran out; requests say so until a fresh `auth`. */
  expired: boolean;
  /** An `auth` is being verified; frames wait in `waiting` so they see its outcome. */
  authing: boolean;
  waiting: string[];
  subscriptions: Map<string, Subscription>;
  subscriptionCounter: number;
  cancelExpiry: (() => void) | undefined;
  presenceOpened: boolean;
}

export function newSession(): BroadcasterSession {
  return {
    grant: undefined,
    expired: false,
    authing: false,
    waiting: [],
    subscriptions: new Map(),
    subscriptionCounter: 0,
    cancelExpiry: undefined,
    presenceOpened: false,
  };
}

/** Handlers for Broadcaster requests. Errors are thrown as BroadcasterRequestError. */
export class BroadcasterCommands {
  constructor(private readonly ctx: GatewayContext) {}

  async handle(conn: Connection, s: BroadcasterSession, id: RequestId, r: Request): Promise<void> {
    switch (r.method) {
      case "ping":
        conn.send(encode.result(id, { timestamp: rfc3339(Date.now()) }));
        return;
      case "auth":
        return this.auth(conn, s, id, r.token);
      case "subscribe":
        this.authorize(s, r.channel, "subscribe");
        return this.subscribe(conn, s, id, r.channel);
      case "unsubscribe": {
        this.grant(s);
        if (!s.subscriptions.has(r.channel))
          throw new BroadcasterRequestError("NotFound", `not subscribed to ${r.channel}`);
        this.drop(conn, s, r.channel);
        conn.send(encode.result(id, { success: true }));
        return;
      }
      case "publish": {
        const grant = this.authorize(s, r.channel, "publish");
        const app = conn.app!;
        const started = performance.now();
        const published = await this.ctx.engine.publish(app.id, r.channel, {
          name: r.event,
          data: r.payload,
          userId: grant.userId,
        });
        this.ctx.metrics.publishLatency.observe(
          { dialect: "broadcaster" },
          (performance.now() - started) / 1000,
        );
        conn.send(encode.result(id, encode.published(published.id, published.time)));
        return;
      }
    }
  }

  closed(conn: Connection, s: BroadcasterSession): void {
    s.cancelExpiry?.();
    s.subscriptions.clear();
    if (s.presenceOpened) {
      // One call drops every subscription the presence service holds for the connection.
      this.ctx.presence.connectionClosed(conn.app!.id, conn.id).catch((err: unknown) => {
        conn.log.warn({ err }, "presence close report failed");
      });
    }
  }

  private async auth(conn: Connection, s: BroadcasterSession, id: RequestId, token: string) {
    const app = conn.app!;
    let grant: BroadcasterGrant;
    try {
      grant = await verifyBroadcasterToken(app, token, Date.now());
    } catch (err) {
      if (err instanceof TokenError)
        throw new BroadcasterRequestError("Unauthenticated", err.message);
      throw err;
    }
    if (conn.closed) return;
    // Subscriptions and presence were set up for one user; switching needs a new connection.
    if (conn.userId !== undefined && conn.userId !== grant.userId) {
      throw new BroadcasterRequestError(
        "FailedPrecondition",
        "a refreshed token must be for the same sub; reconnect to switch users",
      );
    }
    conn.userId = grant.userId;
    s.grant = grant;
    s.expired = false;
    this.scheduleExpiry(conn, s, grant.expiresAtMs);
    // A refresh is also how a backend revokes: what the new token does not allow ends now.
    for (const channel of [...s.subscriptions.keys()]) {
      const refusal = this.refusal(grant, channel, "subscribe");
      if (refusal) this.revoke(conn, s, channel, refusal);
    }
    if (!s.presenceOpened) {
      s.presenceOpened = true;
      await this.ctx.presence.connectionOpened(app.id, conn.id, grant.userId, []);
    }
    conn.send(encode.result(id, { success: true }));
  }

  private scheduleExpiry(conn: Connection, s: BroadcasterSession, atMs: number): void {
    s.cancelExpiry?.();
    s.cancelExpiry = runAt(atMs, () => this.expire(conn, s));
  }

  /** The token ran out: nothing more is delivered until the client authenticates again. */
  private expire(conn: Connection, s: BroadcasterSession): void {
    s.cancelExpiry?.();
    s.cancelExpiry = undefined;
    s.grant = undefined;
    s.expired = true;
    const expired = new BroadcasterRequestError(
      "Unauthenticated",
      "token expired; send auth with a fresh token",
    );
    for (const channel of [...s.subscriptions.keys()]) this.revoke(conn, s, channel, expired);
  }

  private grant(s: BroadcasterSession): BroadcasterGrant {
    const g = s.grant;
    if (g && Date.now() < g.expiresAtMs) return g;
    if (g) s.expired = true;
    throw new BroadcasterRequestError(
      "Unauthenticated",
      s.expired ? "token expired; send auth with a fresh token" : "send auth first",
    );
  }

  private authorize(s: BroadcasterSession, channel: string, scope: Scope): BroadcasterGrant {
    const g = this.grant(s);
    const refusal = this.refusal(g, channel, scope);
    if (refusal) throw refusal;
    return g;
  }

  /** Why `grant` does not allow `scope` on `channel`, or undefined when it does. */
  private refusal(
    grant: BroadcasterGrant,
    channel: string,
    scope: Scope,
  ): BroadcasterRequestError | undefined {
    if (!grant.scopes.has(scope))
      return new BroadcasterRequestError("PermissionDenied", `token lacks the ${scope} scope`);
    if (!channelAllowed(channel, grant.channels))
      return new BroadcasterRequestError(
        "PermissionDenied",
        `channel ${channel} is not authorized`,
      );
    return undefined;
  }

  /** Ends a subscription the client did not cancel, and tells it why. */
  private revoke(
    conn: Connection,
    s: BroadcasterSession,
    channel: string,
    why: BroadcasterRequestError,
  ): void {
    const sub = s.subscriptions.get(channel);
    if (!sub) return;
    this.drop(conn, s, channel);
    conn.send(encode.unsubscribed(channel, sub.id, why.code, why.message));
  }

  private async subscribe(conn: Connection, s: BroadcasterSession, id: RequestId, channel: string) {
    const app = conn.app!;
    if (s.subscriptions.has(channel))
      throw new BroadcasterRequestError("AlreadyExists", `already subscribed to ${channel}`);
    if (s.subscriptions.size >= app.limits.maxSubscriptions) {
      throw new BroadcasterRequestError(
        "FailedPrecondition",
        `at most ${app.limits.maxSubscriptions} subscriptions per connection`,
      );
    }
    s.subscriptionCounter += 1;
    const sub: Subscription = { id: `sub-${s.subscriptionCounter}`, seq: 0 };
    s.subscriptions.set(channel, sub);
    // Per subscriber (no topic): each subscription numbers its own messages.
    const encoder: ChannelEncoder = {
      encode: (_channel, d) => (d.type === "event" ? encode.message(d.event, ++sub.seq) : null),
    };
    let replied = false;
    const reply = () => {
      if (replied) return;
      replied = true;
      conn.send(encode.result(id, { subscriptionId: sub.id, timestamp: rfc3339(Date.now()) }));
    };
    try {
      // Registered for subscriber counts and channel listings; Broadcaster has no members.
      await this.ctx.presence.subscribe({
        appId: app.id,
        channel,
        connectionId: conn.id,
        userId: conn.userId,
        member: false,
        maxMembers: app.limits.maxPresenceMembers,
      });
      if (conn.closed || s.subscriptions.get(channel) !== sub) return reply();
      await this.ctx.hub.join(conn, channel, encoder, { beforeEvents: reply });
    } catch (err) {
      if (s.subscriptions.get(channel) === sub) this.drop(conn, s, channel);
      throw err;
    }
    // An unsubscribe that overtook the join cancels it before beforeEvents; still answer.
    reply();
  }

  private drop(conn: Connection, s: BroadcasterSession, channel: string): void {
    s.subscriptions.delete(channel);
    this.ctx.hub.leave(conn, channel);
    this.ctx.presence.unsubscribe(conn.app!.id, channel, conn.id).catch((err: unknown) => {
      conn.log.warn({ err }, "presence unsubscribe report failed");
    });
  }
}
