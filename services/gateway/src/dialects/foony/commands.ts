import type { Json } from "../../../../../shared/src/model.js";
import type { PresenceEntry } from "../../../../../shared/src/presence/api.js";
import type { Connection } from "../../core/connection.js";
import type { GatewayContext } from "../../core/dialect.js";
import type { HeldFrames } from "../../core/held-frames.js";
import { allows, type Capability, type Operation } from "./auth.js";
import { type ClientFrame, encode } from "./codec.js";
import { FoonyError, FoonyRequestError } from "./codes.js";
import { foonyEncoder } from "./encoder.js";

export interface FoonySession {
  state: "awaiting" | "authing" | "ready";
  /** Frames that arrived while `auth` was being verified; they run right after `connected`. */
  early: HeldFrames;
  clientId: string;
  capability: Capability;
  /** Channels this connection entered presence on, with its latest data. */
  entered: Map<string, Json | undefined>;
  /** Presence service holds subscriptions or entries of this connection (drop them on close). */
  registered: boolean;
}

type Request = Exclude<ClientFrame, { t: "auth" }>;

/** Handlers for authenticated Foony requests. Errors are thrown as FoonyRequestError. */
export class FoonyCommands {
  constructor(private readonly ctx: GatewayContext) {}

  async handle(conn: Connection, s: FoonySession, f: Request): Promise<void> {
    const app = conn.app!;
    switch (f.t) {
      case "ping":
        conn.send(encode.pong());
        return;
      case "sub":
        this.authorize(s, f.channel, "subscribe");
        return this.subscribe(conn, s, f);
      case "unsub":
        if (!this.ctx.hub.isSubscribed(conn, f.channel))
          throw new FoonyRequestError(FoonyError.notFound, `not subscribed to ${f.channel}`);
        this.unsubscribe(conn, f.channel);
        conn.send(encode.ack(f.id));
        return;
      case "pub": {
        this.authorize(s, f.channel, "publish");
        const started = performance.now();
        await this.ctx.engine.publish(app.id, f.channel, {
          name: f.name,
          data: f.data,
          userId: s.clientId,
        });
        this.ctx.metrics.publishLatency.observe(
          { dialect: "foony" },
          (performance.now() - started) / 1000,
        );
        conn.send(encode.ack(f.id));
        return;
      }
      case "pres":
        this.authorize(s, f.channel, "presence");
        await this.presence(conn, s, f);
        conn.send(encode.ack(f.id));
        return;
      case "hist": {
        this.authorize(s, f.channel, "history");
        const page = await this.ctx.engine.history(app.id, f.channel, {
          beforeSeq: f.beforeSeq,
          limit: f.limit,
        });
        conn.send(encode.histRes(f.id, f.channel, page.events, page.hasMore));
        return;
      }
    }
  }

  /**
   * A closed connection leaves every channel it entered: the presence
   * service announces those leaves when told the connection closed (or when
   * this gateway dies), so the gateway sends none of its own.
   */
  closed(conn: Connection, s: FoonySession): void {
    const app = conn.app;
    if (!app) return;
    s.entered.clear();
    if (s.registered) {
      this.ctx.presence.connectionClosed(app.id, conn.id).catch((err: unknown) => {
        conn.log.warn({ err }, "presence close report failed");
      });
    }
  }

  private authorize(s: FoonySession, channel: string, op: Operation): void {
    if (!allows(s.capability, channel, op))
      throw new FoonyRequestError(FoonyError.forbidden, `no ${op} capability for ${channel}`);
  }

  private async subscribe(conn: Connection, s: FoonySession, f: Request & { t: "sub" }) {
    const app = conn.app!;
    // A second sub restarts the subscription so its lastMessageId replay takes effect.
    if (this.ctx.hub.isSubscribed(conn, f.channel)) this.unsubscribe(conn, f.channel);
    if (conn.channels.size >= app.limits.maxSubscriptions) {
      throw new FoonyRequestError(
        FoonyError.badFrame,
        `at most ${app.limits.maxSubscriptions} subscriptions per connection`,
      );
    }
    let acked = false;
    const ack = () => {
      if (acked) return;
      acked = true;
      conn.send(encode.ack(f.id));
    };
    let entries: PresenceEntry[] = [];
    // join marks the channel subscribed before its first await, so an `unsub`
    // sent right after this `sub` finds it and cancels the join cleanly.
    const joined = this.ctx.hub.join(conn, f.channel, foonyEncoder, {
      afterSeq: f.afterSeq,
      // Asked only once live signals flow, so no change falls between; the hub
      // drops the held changes the set already has (by version), so none repeats.
      snapshot: async () => {
        try {
          const set = await this.ctx.presence.presenceSet(app.id, f.channel);
          entries = set.entries;
          return set.version;
        } catch (err) {
          conn.log.warn({ err }, "presence set unavailable; sending live changes only");
          return undefined;
        }
      },
      // The set as one `enter` per entry (the spec has no "present" action or
      // presence query), before any change held meanwhile.
      beforeEvents: () => {
        ack();
        const now = Date.now();
        for (const e of entries)
          conn.send(encode.presEvt(f.channel, { kind: "entry", action: "enter", ...e }, now));
      },
    });
    s.registered = true;
    // Registered for subscriber counts and channel listings; Foony members are signals.
    this.ctx.presence
      .subscribe({
        appId: app.id,
        channel: f.channel,
        connectionId: conn.id,
        member: false,
        maxMembers: app.limits.maxPresenceMembers,
      })
      .catch((err: unknown) => conn.log.warn({ err }, "presence subscribe report failed"));
    try {
      await joined;
    } catch (err) {
      this.unsubscribe(conn, f.channel);
      throw err;
    }
    // An unsub that overtook the join cancels it before beforeEvents; still answer.
    ack();
  }

  private unsubscribe(conn: Connection, channel: string): void {
    this.ctx.hub.leave(conn, channel);
    this.ctx.presence.unsubscribe(conn.app!.id, channel, conn.id).catch((err: unknown) => {
      conn.log.warn({ err }, "presence unsubscribe report failed");
    });
  }

  private async presence(conn: Connection, s: FoonySession, f: Request & { t: "pres" }) {
    let action = f.action;
    let data = f.data;
    if (action === "leave") {
      if (!s.entered.has(f.channel))
        throw new FoonyRequestError(FoonyError.notFound, `not present in ${f.channel}`);
      // A leave without data reports the data the member had.
      data ??= s.entered.get(f.channel);
      s.entered.delete(f.channel);
    } else {
      // An update from a client nobody has seen enter is its entrance.
      if (!s.entered.has(f.channel)) action = "enter";
      s.entered.set(f.channel, data);
    }
    s.registered = true;
    // The service announces the change (or nothing, for an update that changes
    // nothing) and announces the leave itself if this connection or gateway dies.
    await this.ctx.presence
      .setPresence({
        appId: conn.app!.id,
        channel: f.channel,
        connectionId: conn.id,
        clientId: s.clientId,
        action,
        data,
      })
      .catch((err: unknown) => {
        conn.log.warn({ err }, "presence report failed");
        throw new FoonyRequestError(FoonyError.server, "presence temporarily unavailable; retry");
      });
  }
}
