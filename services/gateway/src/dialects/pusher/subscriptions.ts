import { channelKind, isValidUserId } from "../../../../../shared/src/channels.js";
import type { Json } from "../../../../../shared/src/model.js";
import type { Member } from "../../../../../shared/src/presence/api.js";
import type { DialectContext } from "../../core/dialect.js";
import type { JoinPlan } from "../../core/join-plan.js";
import { TokenBucket } from "../../core/rate.js";
import { verifyChannelAuth } from "./auth.js";
import { type Command, encode, isServerToUser, SERVER_TO_USER_PREFIX } from "./codec.js";
import { PusherErrorCode } from "./codes.js";
import { encoderFor, forgetChannel } from "./extensions.js";
import { type PusherReplies, PusherSubscriptionError } from "./replies.js";
import { type PusherConnection, settlePending } from "./state.js";

type Subscribe = Command & { type: "subscribe" };
type ClientEvent = Command & { type: "client_event" };
type PresenceMember = { userId: string; info: Json | undefined };

/**
 * Channel subscriptions and client events of Pusher connections. Refusals
 * the client caused are thrown as PusherSubscriptionError; the core's
 * limits as SessionError (see PusherReplies.failed).
 */
export class PusherChannels {
  constructor(
    private readonly ctx: Pick<DialectContext, "webhooks">,
    private readonly replies: PusherReplies,
  ) {}

  async subscribe(s: PusherConnection, c: Subscribe): Promise<void> {
    const { session } = s;
    const { channel } = c;
    if (isServerToUser(channel)) return this.subscribeServerToUser(s, channel);
    if (s.pending?.has(channel)) return;
    if (c.filter && !c.filter.ok)
      throw new PusherSubscriptionError(channel, "InvalidFilter", c.filter.message, 400);
    if (session.subscribed(channel)) {
      // pusher-js resubscribes after a state change; answer again without rejoining.
      const members = channelKind(channel).presence ? await session.members(channel) : undefined;
      session.conn.send(encode.subscriptionSucceeded(channel, members && presenceHash(members)));
      return;
    }
    try {
      // The limit is checked first, then the plan's own checks (auth) run in its slot.
      await session.join(channel, () => this.plan(s, c));
    } finally {
      settlePending(s, channel);
      if (!session.subscribed(channel)) {
        forgetChannel(s, channel);
        s.presenceIds?.delete(channel);
      }
    }
  }

  unsubscribe(s: PusherConnection, channel: string): void {
    const wasPending = settlePending(s, channel);
    if (!s.session.subscribed(channel) && !wasPending) return;
    s.session.leave(channel);
    forgetChannel(s, channel);
    s.presenceIds?.delete(channel);
  }

  clientEvent(s: PusherConnection, c: ClientEvent): void {
    const { session } = s;
    const { conn } = session;
    const kind = channelKind(c.channel);
    if (!kind.private || kind.encrypted || isServerToUser(c.channel)) {
      this.replies.error(
        conn,
        null,
        `Client events are not allowed on ${c.channel}: use a private- or presence- channel`,
      );
      return;
    }
    if (!session.subscribed(c.channel) || s.pending?.has(c.channel)) {
      this.replies.error(conn, null, `Not subscribed to ${c.channel}`);
      return;
    }
    const rate = session.app.limits.clientEventRate;
    // Made at the first client event: most connections never send one.
    s.clientEvents ??= new TokenBucket(rate, rate);
    if (!s.clientEvents.take()) {
      this.replies.error(
        conn,
        PusherErrorCode.rejected,
        `Client event rejected: over ${session.app.limits.clientEventRate} client events per second`,
      );
      return;
    }
    const presenceId = s.presenceIds?.get(c.channel);
    session.signal(c.channel, {
      kind: "transient",
      name: c.event,
      data: c.data,
      userId: presenceId ?? session.userId,
      excludeConnectionId: conn.id,
    });
    this.ctx.webhooks.enqueue(session.app.id, {
      name: "client_event",
      channel: c.channel,
      event: c.event,
      // Pusher hands receivers the data as the JSON text the client sent.
      data: typeof c.data === "string" ? c.data : JSON.stringify(c.data),
      socket_id: conn.id,
      ...(presenceId === undefined ? {} : { user_id: presenceId }),
    });
  }

  /** What a subscribe that passed the limit does before joining: auth, then the cache lookup. */
  private async plan(s: PusherConnection, c: Subscribe): Promise<JoinPlan> {
    const { session } = s;
    const { conn } = session;
    const { channel } = c;
    const kind = channelKind(channel);
    const member = kind.private ? this.authorize(s, c, kind.presence) : undefined;
    s.pending ??= new Set();
    s.pending.add(channel);
    // A cache channel starts with its newest stored event; replaying from just
    // before it hands it over through the hub, with no gap to the live stream.
    const last = kind.cache ? (await session.history(channel, { limit: 1 })).events[0] : undefined;
    if (member) {
      s.presenceIds ??= new Map();
      s.presenceIds.set(channel, member.userId);
    }
    if (c.filter?.ok) {
      s.filters ??= new Map();
      s.filters.set(channel, c.filter.value);
    }
    return {
      // Chosen now, not before the awaits: delta compression may have been enabled meanwhile.
      encoder: encoderFor(s, channel),
      afterSeq: kind.cache ? (last ? last.seq - 1 : 0) : undefined,
      // Only a presence channel's reply carries what presence answers.
      presence: {
        member: kind.presence,
        userId: member?.userId,
        info: member?.info,
        answer: kind.presence,
      },
      beforeEvents: ({ replayed, members }) => {
        settlePending(s, channel);
        conn.send(
          encode.subscriptionSucceeded(channel, kind.presence ? presenceHash(members) : undefined),
        );
        // Nothing stored before, nor between that read and going live.
        if (kind.cache && !last && !replayed) {
          conn.send(encode.cacheMiss(channel));
          this.ctx.webhooks.enqueue(session.app.id, { name: "cache_miss", channel });
        }
      },
    };
  }

  /** A private channel's signature; a presence channel's member from its channel_data. */
  private authorize(
    s: PusherConnection,
    c: Subscribe,
    presence: boolean,
  ): PresenceMember | undefined {
    const { channel } = c;
    const data = presence ? c.channelData : undefined;
    if (!verifyChannelAuth(s.session.app, s.session.id, channel, c.auth, data))
      throw new PusherSubscriptionError(channel, "AuthError", "Invalid signature", 401);
    if (!presence) return undefined;
    const member = parseChannelData(c.channelData);
    if (!member)
      throw new PusherSubscriptionError(channel, "AuthError", "channel_data needs a user_id", 400);
    return member;
  }

  private subscribeServerToUser(s: PusherConnection, channel: string): void {
    if (s.user && channel === `${SERVER_TO_USER_PREFIX}${s.user.id}`) {
      s.session.conn.send(encode.subscriptionSucceeded(channel));
      return;
    }
    throw new PusherSubscriptionError(channel, "AuthError", "Sign in as this user first", 401);
  }
}

/** Presence `channel_data`: `{user_id, user_info?}`; numeric ids become strings, as Pusher does. */
function parseChannelData(text: string | undefined): PresenceMember | undefined {
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
