import type { AppConfig } from "../../../../shared/src/config/apps.js";
import type {
  Engine,
  HistoryPage,
  HistoryQuery,
  KvStore,
  PublishResult,
} from "../../../../shared/src/engine/engine.js";
import type { Logger } from "../../../../shared/src/log.js";
import type {
  EventInput,
  KvBucket,
  Signal,
  StoredEvent,
  UserStatus,
} from "../../../../shared/src/model.js";
import type {
  Member,
  PresenceApi,
  PresenceChange,
  PresenceSet,
  SubscribeOutcome,
} from "../../../../shared/src/presence/api.js";
import { SmallSet } from "../../../../shared/src/small-set.js";
import type { Connection } from "./connection.js";
import type { ChannelEncoder, Hub } from "./hub.js";
import type { Joined, JoinPlan, PresenceRole } from "./join-plan.js";
import type { Publish } from "./publish.js";
import { SessionError } from "./session-error.js";
import type { Users } from "./users.js";

/** The services a session works with, handed down by the composition root. */
export interface SessionServices {
  engine: Engine;
  publish: Publish;
  hub: Hub;
  users: Users;
  presence: PresenceApi;
  log: Logger;
}

/**
 * One connection bound to its app: what every dialect's commands call. It
 * owns what all five protocols share: presence reports (each once, in
 * order, and the close report only if presence was told anything), the
 * subscription limit (joins in flight hold a slot), join → replay → live,
 * publishing with its metric, and the end of all of it at close.
 */
export class Session {
  /** Set by `identify`; a dialect that requires a user reads it from `UserSession`. */
  userId: string | undefined;
  // The collections below are made on first use and dropped when empty again:
  // most connections never need them or need them only for a moment, and a
  // few empty collections per socket are a measurable share of a
  // connection's memory.
  /**
   * Joins whose plan is being made, one token per attempt: they count
   * against the limit, and a leave cancels exactly the attempt it finds (a
   * later join of the same channel is another attempt).
   */
  private joining: Map<string, symbol> | undefined;
  /** Joins past their plan, until the hub settles them; a leave takes the entry. */
  private joined: Map<string, symbol> | undefined;
  /** The tail of each channel's queued operations (see `inOrder`). */
  private ops: Map<string, Promise<void>> | undefined;
  /** Subscriptions presence was told of: a leave reports only these, each once. */
  private reported: SmallSet | undefined;
  /** Presence holds something of this connection, so its close must be reported. */
  private presenceTold = false;
  private ended = false;

  constructor(
    readonly conn: Connection,
    readonly app: AppConfig,
    private readonly core: SessionServices,
  ) {}

  get id(): string {
    return this.conn.id;
  }

  /**
   * Signs the connection in as `userId` and delivers signals addressed to the
   * user (terminate, blocks, watchlist, server-to-user) to `onSignal`.
   * Resolves once they flow.
   */
  async identify(userId: string, onSignal: (signal: Signal) => void): Promise<UserSession> {
    this.userId = userId;
    await this.core.users.add(this.conn, this.app.id, userId, onSignal);
    return this as UserSession;
  }

  /**
   * Reports the signed-in user online with its watchlist; resolves with the
   * watched users that are online already. `reported` runs once presence
   * took the report, before those are asked (a dialect that confirms the
   * sign-in then, ahead of any watch signal).
   */
  async online(
    userId: string,
    watchlist: readonly string[],
    reported?: () => void,
  ): Promise<string[]> {
    await this.reportOnline(userId, watchlist);
    reported?.();
    const statuses = await Promise.all(
      watchlist.map((u) => this.core.presence.status(this.app.id, u)),
    );
    return watchlist.filter((_, i) => statuses[i] !== "offline");
  }

  /**
   * Reports the signed-in user online with its watchlist, without asking who
   * is online already: for a dialect whose clients hear only of changes.
   */
  reportOnline(userId: string, watchlist: readonly string[]): Promise<void> {
    this.presenceTold = true;
    return this.core.presence.connectionOpened(this.app.id, this.id, userId, watchlist);
  }

  setStatus(userId: string, status: UserStatus): Promise<void> {
    return this.core.presence.setStatus(this.app.id, userId, status);
  }

  /** Foony-style connection-level presence entries: announced by the presence service. */
  setPresence(change: Omit<PresenceChange, "appId" | "connectionId">): Promise<void> {
    this.presenceTold = true;
    const { channel, clientId, action, data } = change;
    return this.core.presence.setPresence({
      appId: this.app.id,
      connectionId: this.id,
      channel,
      clientId,
      action,
      data,
    });
  }

  /** The channel's connection-level presence entries (see `setPresence`) and their version. */
  presenceEntries(channel: string): Promise<PresenceSet> {
    return this.core.presence.presenceSet(this.app.id, channel);
  }

  /** Subscribed (live or replaying); a join still being prepared is not. */
  subscribed(channel: string): boolean {
    return this.conn.hasChannel(channel);
  }

  /** Subscriptions plus joins in flight: what the app's limit counts. */
  subscriptionCount(): number {
    return this.conn.channelCount + (this.joining?.size ?? 0);
  }

  /**
   * Throws the subscription-limit refusal `join` would: for a dialect that
   * must be refused before it sets anything up for the join (Broadcaster
   * numbers its subscriptions).
   */
  checkSubscriptionLimit(channel: string): void {
    const max = this.app.limits.maxSubscriptions;
    if (this.subscriptionCount() >= max) {
      throw new SessionError(
        "subscription_limit",
        channel,
        `at most ${max} subscriptions per connection`,
      );
    }
  }

  /**
   * Joins a channel: checks the subscription limit (holding a slot while
   * `plan` runs the dialect's own lookups), registers with presence once
   * live signals flow, replays, then goes live with no gap and no
   * duplicate. Throws `SessionError` for the limit and a full channel.
   * Resolves with undefined when `leave` cancelled it first.
   */
  async join(
    channel: string,
    plan: JoinPlan | (() => Promise<JoinPlan>),
  ): Promise<Joined | undefined> {
    this.checkSubscriptionLimit(channel);
    const attempt = Symbol(channel);
    this.joining ??= new Map();
    this.joining.set(channel, attempt);
    let made: { plan: JoinPlan } | { error: unknown };
    try {
      made = { plan: typeof plan === "function" ? await plan() : plan };
    } catch (error) {
      made = { error };
    }
    const mine = take(this.joining, channel, attempt);
    if (this.joining?.size === 0) this.joining = undefined;
    // Left (or superseded) while the plan was made: nothing to undo, nothing to answer.
    if (!mine || this.conn.closed) return undefined;
    if ("error" in made) throw made.error;
    const p = made.plan;
    const presence = p.presence;
    let outcome: (SubscribeOutcome & { ok: true }) | undefined;
    let joined: Joined | undefined;
    this.joined ??= new Map();
    this.joined.set(channel, attempt);
    const live = this.core.hub.join(this.conn, channel, p.encoder, {
      afterSeq: p.afterSeq,
      skip: p.skip,
      // Taken once the channel's signals flow, so no member change falls between.
      snapshot: async () => {
        if (presence && this.joined?.get(channel) === attempt) {
          this.reported ??= new SmallSet();
          this.reported.add(channel);
          if (presence.answer === false && !presence.member) {
            // Queued now, in order; only a member's report can refuse the join.
            this.reportSubscribe(channel, presence).catch((err: unknown) => {
              this.conn.log.warn({ err }, "presence subscribe report failed");
            });
          } else outcome = await this.reportSubscribe(channel, presence);
        }
        return p.snapshot ? p.snapshot() : outcome?.version;
      },
      beforeEvents: ({ lastSeq, truncated, replayed }) => {
        joined = {
          lastSeq,
          truncated,
          replayed,
          members: outcome?.members ?? [],
          subscriberCount: outcome?.subscriberCount ?? 0,
        };
        p.beforeEvents?.(joined);
      },
    });
    try {
      await live;
    } catch (err) {
      // Left while the hub joined: the leave ended it (and told presence); the
      // client asked for that, so the failure is not an answer it waits for.
      if (!this.endJoined(channel, attempt)) return undefined;
      // The hub undid the subscription: presence must not go on counting it.
      if (!this.ended && this.takeReported(channel)) this.reportUnsubscribe(channel);
      throw err;
    }
    this.endJoined(channel, attempt);
    return joined;
  }

  /**
   * Changes how a live (or replaying) subscription of `channel` is encoded,
   * e.g. once the client opted into per-connection framing; false when not
   * subscribed.
   */
  setEncoder(channel: string, encoder: ChannelEncoder): boolean {
    return this.core.hub.setEncoder(this.conn, channel, encoder);
  }

  /** The channel's members as presence sees them now (a repeated subscribe's answer). */
  members(channel: string): Promise<Member[]> {
    return this.core.presence.members(this.app.id, channel);
  }

  /** Takes this attempt out of `joined`; false when a leave (or a later join) took it first. */
  private endJoined(channel: string, attempt: symbol): boolean {
    const mine = take(this.joined, channel, attempt);
    if (this.joined?.size === 0) this.joined = undefined;
    return mine;
  }

  /** Takes a channel out of `reported`; false when presence was not told of it. */
  private takeReported(channel: string): boolean {
    if (!this.reported?.delete(channel)) return false;
    if (this.reported.size === 0) this.reported = undefined;
    return true;
  }

  /** Ends a subscription, or cancels one being prepared. Idempotent. */
  leave(channel: string): void {
    if (this.joining?.delete(channel)) {
      if (this.joining.size === 0) this.joining = undefined;
      return;
    }
    this.joined?.delete(channel);
    if (this.joined?.size === 0) this.joined = undefined;
    if (!this.conn.hasChannel(channel)) return;
    this.core.hub.leave(this.conn, channel);
    if (this.takeReported(channel)) this.reportUnsubscribe(channel);
  }

  /**
   * Runs a channel's operations one after another in the order the client
   * sent them: a subscribe waits on storage and presence, so without this
   * an unsubscribe (or a second subscribe) sent right after it could finish
   * first and leave the wrong state behind.
   */
  inOrder(channel: string, op: () => Promise<void> | void): Promise<void> {
    this.ops ??= new Map();
    const ops = this.ops;
    const previous = ops.get(channel) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(op);
    ops.set(channel, next);
    const forget = () => {
      if (ops.get(channel) !== next) return;
      ops.delete(channel);
      if (ops.size === 0 && this.ops === ops) this.ops = undefined;
    };
    next.then(forget, forget);
    return next;
  }

  /** Stores an event through the one publish path (its latency is recorded once). */
  publish(channel: string, event: EventInput, idempotencyKey?: string): Promise<PublishResult> {
    return this.core.publish(this.app.id, channel, event, {
      dialect: this.conn.dialect,
      idempotencyKey,
    });
  }

  /** Fans a signal out to the channel's live subscribers (not stored). */
  signal(channel: string, signal: Signal): void {
    this.core.engine.signal(this.app.id, channel, signal);
  }

  /** Sends a signal to a user's connections on every gateway (not stored). */
  signalUser(userId: string, signal: Signal): void {
    this.core.engine.signalUser(this.app.id, userId, signal);
  }

  history(channel: string, query: HistoryQuery): Promise<HistoryPage> {
    return this.core.engine.history(this.app.id, channel, query);
  }

  event(channel: string, seq: number): Promise<StoredEvent | null> {
    return this.core.engine.getEvent(this.app.id, channel, seq);
  }

  lastSeq(channel: string): Promise<number> {
    return this.core.engine.lastSeq(this.app.id, channel);
  }

  /** One of the app's key-value buckets (cursors, acks, reactions, ...). */
  store(bucket: KvBucket): KvStore {
    return this.core.engine.kv(this.app.id, bucket);
  }

  /**
   * The connection closed: every subscription ends and presence hears of it
   * once (one report drops all the connection's subscriptions, entries and
   * online state). Run by the server's close handler, after the dialect's.
   */
  closed(): void {
    if (this.ended) return;
    this.ended = true;
    this.joining = undefined;
    this.joined = undefined;
    this.reported = undefined;
    this.core.hub.leaveAll(this.conn);
    if (!this.presenceTold) return;
    this.core.presence.connectionClosed(this.app.id, this.id).catch((err: unknown) => {
      this.conn.log.warn({ err }, "presence close report failed");
    });
  }

  private reportUnsubscribe(channel: string): void {
    this.core.presence.unsubscribe(this.app.id, channel, this.id).catch((err: unknown) => {
      this.conn.log.warn({ err }, "presence unsubscribe report failed");
    });
  }

  private async reportSubscribe(
    channel: string,
    role: PresenceRole,
  ): Promise<(SubscribeOutcome & { ok: true }) | undefined> {
    this.presenceTold = true;
    let outcome: SubscribeOutcome;
    try {
      outcome = await this.core.presence.subscribe({
        appId: this.app.id,
        channel,
        connectionId: this.id,
        userId: role.userId ?? this.userId,
        info: role.info,
        member: role.member,
        maxMembers: this.app.limits.maxPresenceMembers,
      });
    } catch (err) {
      if (!role.optional) throw err;
      this.conn.log.warn({ err }, "presence subscribe report failed");
      return undefined;
    }
    if (!outcome.ok) throw new SessionError("channel_full", channel, `channel ${channel} is full`);
    return outcome;
  }
}

/** Binds connections to their app: the one way a dialect gets a session. */
export class Sessions {
  constructor(private readonly services: SessionServices) {}

  /**
   * The session of `conn` in `app`, or undefined when the app is at its
   * connection limit (the dialect then refuses in its own terms), the
   * connection is bound to another app, or it closed meanwhile.
   */
  bind(conn: Connection, app: AppConfig): Session | undefined {
    // Closed while the dialect authenticated: nothing may be counted for it any more.
    if (conn.closed) return undefined;
    if (conn.session) return conn.session.app.id === app.id ? conn.session : undefined;
    if (!conn.setApp(app)) return undefined;
    conn.session = new Session(conn, app, this.services);
    return conn.session;
  }
}

/** A session signed in as a user: `userId` is known by type. */
export interface UserSession extends Session {
  readonly userId: string;
}

/** Deletes `key` if it maps to `value`; true when it did. */
function take<K, V>(map: Map<K, V> | undefined, key: K, value: V): boolean {
  if (map?.get(key) !== value) return false;
  map.delete(key);
  return true;
}
