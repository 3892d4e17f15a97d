import { channelKind, isValidUserId } from "../../../../../shared/src/channels.js";
import type { Json, Signal } from "../../../../../shared/src/model.js";
import type { Member, SubscribeOutcome } from "../../../../../shared/src/presence/api.js";
import type { Connection } from "../../core/connection.js";
import type { GatewayContext } from "../../core/dialect.js";
import { verifyChannelAuth } from "./auth.js";
import { type Command, encode, isServerToUser, SERVER_TO_USER_PREFIX } from "./codec.js";
import { PusherErrorCode } from "./codes.js";
import { encoderFor, forgetChannel } from "./extensions.js";
import type { PusherSession } from "./session.js";

type Subscribe = Command & { type: "subscribe" };
type ClientEvent = Command & { type: "client_event" };

/** Channel subscriptions and client events of Pusher connections. */
export class PusherChannels {
  constructor(private readonly ctx: GatewayContext) {}

  async subscribe(conn: Connection, s: PusherSession, c: Subscribe): Promise<void> {
    const app = conn.app!;
    const { channel } = c;
    if (isServerToUser(channel)) return this.subscribeServerToUser(conn, s, channel);
    if (s.pending.has(channel)) return;
    if (c.filter && !c.filter.ok)
      return this.refuse(conn, channel, "InvalidFilter", c.filter.message, 400);
    const kind = channelKind(channel);
    if (conn.channels.has(channel)) {
      // pusher-js resubscribes after a state change; answer again without rejoining.
      const members = kind.presence ? await this.ctx.presence.members(app.id, channel) : undefined;
      conn.send(encode.subscriptionSucceeded(channel, members && presenceHash(members)));
      return;
    }
    if (subscriptionCount(conn, s) >= app.limits.maxSubscriptions) {
      return this.refuse(
        conn,
        channel,
        "LimitReached",
        `at most ${app.limits.maxSubscriptions} subscriptions per connection`,
        4100,
      );
    }
    let member: { userId: string; info: Json | undefined } | undefined;
    if (kind.private) {
      const data = kind.presence ? c.channelData : undefined;
      if (!verifyChannelAuth(app, conn.id, channel, c.auth, data)) {
        return this.refuse(conn, channel, "AuthError", "Invalid signature", 401);
      }
      if (kind.presence) {
        member = parseChannelData(c.channelData);
        if (!member) {
          return this.refuse(conn, channel, "AuthError", "channel_data needs a user_id", 400);
        }
      }
    }
    s.pending.add(channel);
    try {
      // A cache channel starts with its newest stored event; replaying from just
      // before it hands it over through the hub, with no gap to the live stream.
      const last = kind.cache
        ? (await this.ctx.engine.history(app.id, channel, { limit: 1 })).events[0]
        : undefined;
      if (conn.closed || !s.pending.has(channel)) return;
      if (member) s.presenceIds.set(channel, member.userId);
      if (c.filter?.ok) s.filters.set(channel, c.filter.value);
      let outcome: SubscribeOutcome & { ok: true };
      // Chosen now, not before the awaits: delta compression may have been enabled meanwhile.
      await this.ctx.hub
        .join(conn, channel, encoderFor(s, channel), {
          afterSeq: kind.cache ? (last ? last.seq - 1 : 0) : undefined,
          // Joined once the channel's signals flow, so no member change falls between.
          snapshot: async () => {
            const o = await this.ctx.presence.subscribe({
              appId: app.id,
              channel,
              connectionId: conn.id,
              userId: member?.userId ?? conn.userId,
              info: member?.info,
              member: kind.presence,
              maxMembers: app.limits.maxPresenceMembers,
            });
            if (!o.ok) throw new ChannelFullError(channel);
            outcome = o;
            return o.version;
          },
          beforeEvents: ({ lastSeq }) => {
            s.pending.delete(channel);
            conn.send(
              encode.subscriptionSucceeded(
                channel,
                kind.presence ? presenceHash(outcome.members) : undefined,
              ),
            );
            if (kind.cache && !last && lastSeq === 0) {
              conn.send(encode.cacheMiss(channel));
              this.ctx.webhooks.enqueue(app.id, { name: "cache_miss", channel });
            }
          },
        })
        .catch((err: unknown) => {
          if (!(err instanceof ChannelFullError)) throw err;
          s.presenceIds.delete(channel);
          this.refuse(
            conn,
            channel,
            "LimitReached",
            "The maximum members in this presence channel has been reached",
            4100,
          );
        });
    } finally {
      s.pending.delete(channel);
      if (!conn.channels.has(channel)) forgetChannel(s, channel);
    }
  }

  unsubscribe(conn: Connection, s: PusherSession, channel: string): void {
    const wasPending = s.pending.delete(channel);
    if (!conn.channels.has(channel) && !wasPending) return;
    this.ctx.hub.leave(conn, channel);
    forgetChannel(s, channel);
    s.presenceIds.delete(channel);
    this.ctx.presence.unsubscribe(conn.app!.id, channel, conn.id).catch((err: unknown) => {
      conn.log.warn({ err }, "presence unsubscribe report failed");
    });
  }

  clientEvent(conn: Connection, s: PusherSession, c: ClientEvent): void {
    const kind = channelKind(c.channel);
    if (!kind.private || kind.encrypted || isServerToUser(c.channel)) {
      this.error(
        conn,
        null,
        `Client events are not allowed on ${c.channel}: use a private- or presence- channel`,
      );
      return;
    }
    if (!conn.channels.has(c.channel) || s.pending.has(c.channel)) {
      this.error(conn, null, `Not subscribed to ${c.channel}`);
      return;
    }
    if (!s.clientEvents.take()) {
      this.error(
        conn,
        PusherErrorCode.rejected,
        `Client event rejected: over ${conn.app!.limits.clientEventRate} client events per second`,
      );
      return;
    }
    const signal: Signal = {
      kind: "transient",
      name: c.event,
      data: c.data,
      userId: s.presenceIds.get(c.channel) ?? conn.userId,
      excludeConnectionId: conn.id,
    };
    this.ctx.engine.signal(conn.app!.id, c.channel, signal);
    const presenceId = s.presenceIds.get(c.channel);
    this.ctx.webhooks.enqueue(conn.app!.id, {
      name: "client_event",
      channel: c.channel,
      event: c.event,
      // Pusher hands receivers the data as the JSON text the client sent.
      data: typeof c.data === "string" ? c.data : JSON.stringify(c.data),
      socket_id: conn.id,
      ...(presenceId === undefined ? {} : { user_id: presenceId }),
    });
  }

  error(conn: Connection, code: number | null, message: string): void {
    this.ctx.metrics.errors.inc({ dialect: "pusher", code: String(code ?? "protocol") });
    conn.send(encode.error(code, message));
  }

  private subscribeServerToUser(conn: Connection, s: PusherSession, channel: string): void {
    if (s.user && channel === `${SERVER_TO_USER_PREFIX}${s.user.id}`) {
      conn.send(encode.subscriptionSucceeded(channel));
      return;
    }
    this.refuse(conn, channel, "AuthError", "Sign in as this user first", 401);
  }

  /** `pusher:subscription_error` on `channel`, which pusher-js emits on that channel object. */
  refuse(conn: Connection, channel: string, type: string, message: string, status: number): void {
    this.ctx.metrics.errors.inc({ dialect: "pusher", code: type });
    conn.send(encode.subscriptionError(channel, type, message, status));
  }
}

/** The member limit refused the join; answered as a subscription error, not a failure. */
class ChannelFullError extends Error {
  override name = "ChannelFullError";
  constructor(channel: string) {
    super(`presence channel ${channel} is full`);
  }
}

/**
 * Channels that hold a slot of the subscription limit: subscribed ones, and
 * those whose subscribe is in flight, so a burst of subscribes cannot pass
 * the limit while the first ones wait on presence. A channel stays pending
 * after the hub counts it as subscribed (until its reply), so it is counted
 * once.
 */
function subscriptionCount(conn: Connection, s: PusherSession): number {
  let n = conn.channels.size;
  for (const channel of s.pending) if (!conn.channels.has(channel)) n++;
  return n;
}

/** Presence `channel_data`: `{user_id, user_info?}`; numeric ids become strings, as Pusher does. */
function parseChannelData(
  text: string | undefined,
): { userId: string; info: Json | undefined } | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  const id = typeof v.user_id === "number" ? String(v.user_id) : v.user_id;
  if (!isValidUserId(id)) return undefined;
  return { userId: id, info: v.user_info as Json | undefined };
}

function presenceHash(members: readonly Member[]) {
  const hash: Record<string, Json> = {};
  for (const m of members) hash[m.userId] = m.info ?? null;
  return { ids: members.map((m) => m.userId), hash, count: members.length };
}
