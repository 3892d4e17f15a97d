import type {
  DeliveryGap,
  Engine,
  LiveSubscription,
} from "../../../../shared/src/engine/engine.js";
import type { Logger } from "../../../../shared/src/log.js";
import type { Delivery, PresenceVersion, StoredEvent } from "../../../../shared/src/model.js";
import { compareVersions } from "../../../../shared/src/presence/api.js";
import type { Metrics } from "../metrics.js";
import type { Connection } from "./connection.js";
import { Subscribers } from "./subscribers.js";

/**
 * How a dialect turns a delivery into a frame. Subscribers whose encoders
 * share a `topic` key receive identical bytes, so the hub encodes once and
 * lets uWS fan out; an encoder without `topic` is called per subscriber.
 */
export interface ChannelEncoder {
  readonly topic?: string;
  /** A frame for this delivery, or null when the dialect does not show it. */
  encode(channel: string, delivery: Delivery): string | null;
}

/** Where the hub's frames and closes go: the gateway's server (`createServer`). */
export interface HubOutlet {
  /** uWS `app.publish`: sends the same bytes to every socket on a topic. */
  publish(topic: string, bytes: string): boolean;
  /** Closes a connection whose send buffer is over its app's limit, in its dialect's terms. */
  closeSlowConsumer(conn: Connection): void;
  /** Closes a connection that missed live events, asking it to reconnect and replay. */
  closeForReplay(conn: Connection): void;
}

/** Options for joining a channel. */
export interface JoinOptions {
  /** Replay stored events with seq > afterSeq before going live. */
  afterSeq?: number | undefined;
  /**
   * Called once the live subscription is active and the replay is known,
   * before any event is sent: the dialect sends its "subscribed" reply here.
   * `lastSeq` is where the subscription went live (a position: with
   * JetStream it may be past the channel's own last event, even on an empty
   * channel); `replayed`, whether the replay has any event to send.
   */
  beforeEvents?: (info: { lastSeq: number; truncated: boolean; replayed: boolean }) => void;
  /** Stored events to skip during replay (at-least-once: already acked). */
  skip?: (event: StoredEvent) => boolean;
  /**
   * Takes the channel's member list (joining presence, typically) once the
   * live subscription is active and before `beforeEvents`. Taken any earlier,
   * a change made between the list and the first live signal would never
   * reach this subscriber. Resolves with the list's version: membership
   * signals at or below it are in the list, so they are not delivered to
   * this subscriber, whether they arrive before or after it goes live.
   * Throwing cancels the join; it is not called if the join was cancelled first.
   */
  snapshot?: () => Promise<PresenceVersion | undefined>;
}

interface Subscriber {
  conn: Connection;
  encoder: ChannelEncoder;
  /** Its app's send-buffer limit (a connection's app is bound once, before it joins). */
  slowConsumerBytes: number;
  /** Deliveries held while a replay is in flight; null once live. */
  buffer: Delivery[] | null;
  /** Version of the member list this subscriber got (`JoinOptions.snapshot`). */
  covers?: PresenceVersion | undefined;
  /** The highest event seq it already has when it goes live (its replay, or its start). */
  sentUpTo?: number | undefined;
}

/** Live subscribers of a channel on one encoder topic. */
interface Topic {
  /** The encoder's `topic`. */
  key: string;
  /** The uWS topic, built once per channel and topic. */
  name: string;
  encoder: ChannelEncoder;
  count: number;
}

interface LocalChannel {
  appId: string;
  name: string;
  sub: LiveSubscription & { ready: Promise<number> };
  subscribers: Subscribers<Subscriber>;
  /**
   * Live topic subscribers per encoder topic, so a delivery costs one encode
   * per topic. Usually none or one: an array, replaced (not changed in
   * place) when a topic comes or goes, so a delivery iterating it is unaffected.
   */
  topics: readonly Topic[];
  /**
   * The highest `sentUpTo` of a subscriber that went live while the engine
   * may still deliver older events (a replay reads the stream directly and
   * can get ahead of a live channel that is filling a gap): until an event
   * beyond it arrives, events go one by one so nobody gets one twice.
   */
  aheadUpTo: number;
  /** The highest event seq the engine subscription delivered (it delivers in seq order). */
  deliveredUpTo: number;
  /** Newest membership version delivered: versions only grow on a channel. */
  lastVersion?: PresenceVersion | undefined;
  /** What each subscriber was sent (UTF-16 units) since their send queues were last checked. */
  unchecked: number;
  /** Check the send queues once `unchecked` reaches this (see `deliver`). */
  checkEvery: number;
}

/** Deliveries a subscriber may queue while its replay runs. */
const MAX_REPLAY_BUFFER = 10_000;
/**
 * A channel checks its subscribers' send queues each time it has sent them
 * 1/16 of the app's slow-consumer limit (counted in UTF-16 units, at most 3
 * bytes each). What this channel adds between two checks is bounded by that;
 * a connection on many busy channels can still reach uWS's hard stop (twice
 * the largest app's limit plus 1 MiB) between checks, and is then cut by uWS.
 */
const CHECKS_PER_LIMIT = 16;
const REPLAY_PAGE = 500;

/**
 * Local fan-out: one engine subscription per channel with local
 * subscribers, encoded once per dialect, sent through uWS topics.
 */
export class Hub {
  /**
   * Channels with local subscribers, by app then name: the channel's own
   * string is the key, so no `app + channel` key is built per channel.
   */
  private readonly apps = new Map<string, Map<string, LocalChannel>>();
  private channelCount = 0;

  constructor(
    private readonly engine: Engine,
    private readonly outlet: HubOutlet,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /**
   * Subscribes `conn` to `channel`: buffers live deliveries, replays history
   * after `afterSeq`, then switches to live with no duplicate and no gap.
   * Resolves with what was replayed.
   */
  async join(
    conn: Connection,
    channel: string,
    encoder: ChannelEncoder,
    options: JoinOptions = {},
  ): Promise<{ lastSeq: number; truncated: boolean }> {
    const app = conn.app;
    if (!app)
      throw new Error(`connection ${conn.id} joins ${channel} before it is bound to an app`);
    const local = this.local(app.id, channel, app.limits.slowConsumerBytes);
    // A second join of the same channel supersedes the first: the first stops at its
    // next check and must not stay on the topic, or live events would arrive twice.
    const previous = local.subscribers.get(conn.id);
    if (previous) this.leaveTopic(local, previous);
    // Every field set here, so none is added later (that would give each
    // subscriber a property array of its own).
    const subscriber: Subscriber = {
      conn,
      encoder,
      slowConsumerBytes: app.limits.slowConsumerBytes,
      buffer: [],
      covers: undefined,
      sentUpTo: undefined,
    };
    local.subscribers.set(conn.id, subscriber);
    // Every event the engine delivers from here on reaches this subscriber
    // (its buffer, then live): what it delivered before is this one's history.
    const delivered = local.deliveredUpTo;
    conn.addChannel(channel);
    try {
      const startSeq = await local.sub.ready;
      if (options.snapshot) {
        if (!this.stillSubscribed(local, subscriber)) return { lastSeq: 0, truncated: false };
        subscriber.covers = await options.snapshot();
      }
      // Where the engine subscription went live, or where it had delivered up
      // to when this one joined it: no read of the channel's position. (An
      // event stored just before, still on its way here, comes live.) A
      // replay reads the latest seq too: the client compares it with the
      // last seq it has, and one below it means the channel's history was
      // reset, while this gateway may simply not have received that event yet.
      let lastSeq = Math.max(startSeq, delivered);
      if (options.afterSeq !== undefined)
        lastSeq = Math.max(lastSeq, await this.engine.lastSeq(app.id, channel));
      let sentUpTo = lastSeq;
      let truncated = false;
      let page: StoredEvent[] = [];
      let more = false;
      if (options.afterSeq !== undefined) {
        const first = await this.engine.history(app.id, channel, {
          afterSeq: options.afterSeq,
          limit: REPLAY_PAGE,
        });
        truncated = first.truncated;
        page = first.events;
        more = first.hasMore;
        sentUpTo = options.afterSeq;
      }
      if (!this.stillSubscribed(local, subscriber)) return { lastSeq, truncated };
      options.beforeEvents?.({ lastSeq, truncated, replayed: page.length > 0 });
      while (page.length > 0) {
        // The next page is read while this one is sent: the read's round
        // trips overlap the sending instead of adding to it.
        const last = page.at(-1)?.seq ?? sentUpTo;
        const next =
          more && last > sentUpTo
            ? this.engine.history(app.id, channel, { afterSeq: last, limit: REPLAY_PAGE })
            : undefined;
        // Not awaited when the subscriber leaves first.
        next?.catch(() => {});
        conn.corked(() => {
          for (const event of page) {
            if (event.seq <= sentUpTo) continue;
            sentUpTo = event.seq;
            if (!options.skip?.(event))
              this.sendDirect(subscriber, channel, { type: "event", event });
          }
        });
        if (!next || !this.stillSubscribed(local, subscriber)) break;
        await conn.waitForBuffer(app.limits.slowConsumerBytes / 2);
        const read = await next;
        // Gone while waiting: no page read after this one (a JetStream read parks a consumer).
        if (!this.stillSubscribed(local, subscriber)) break;
        if (read.truncated) {
          // History lost events after what this replay sent, after the client was
          // told how much was lost: it replays from there, and is told then.
          this.log.warn(
            { app: app.id, channel, afterSeq: sentUpTo },
            "history trimmed during a replay; closing the subscriber so it replays",
          );
          this.outlet.closeForReplay(conn);
          return { lastSeq, truncated };
        }
        page = read.events;
        more = read.hasMore;
      }
      if (!this.stillSubscribed(local, subscriber)) return { lastSeq, truncated };
      // Synchronous from here: no delivery can slip between the drain and going live.
      for (const d of subscriber.buffer ?? []) {
        if (covered(subscriber, d)) continue;
        if (d.type === "event") {
          if (d.event.seq <= sentUpTo) continue;
          sentUpTo = d.event.seq;
        }
        this.sendDirect(subscriber, channel, d);
      }
      subscriber.buffer = null;
      subscriber.sentUpTo = sentUpTo;
      local.aheadUpTo = Math.max(local.aheadUpTo, sentUpTo);
      // The encoder may have been swapped (setEncoder) while the replay ran.
      this.joinTopic(local, subscriber);
      return { lastSeq, truncated };
    } catch (err) {
      // Only undo our own registration; a later join of the same channel may own it now.
      if (local.subscribers.get(conn.id) === subscriber) this.leave(conn, channel);
      throw err;
    }
  }

  /** Stops delivery of `channel` to `conn`. Idempotent. */
  leave(conn: Connection, channel: string): void {
    const appId = conn.app?.id;
    if (appId === undefined) return;
    const local = this.apps.get(appId)?.get(channel);
    conn.removeChannel(channel);
    const subscriber = local?.subscribers.get(conn.id);
    if (!local || !subscriber) return;
    local.subscribers.delete(conn.id);
    this.leaveTopic(local, subscriber);
    if (local.subscribers.size === 0) {
      local.sub.close();
      this.forget(local);
    }
  }

  /**
   * Changes how `channel` is encoded for `conn` from the next delivery on,
   * e.g. off the shared topic when the connection opts into per-connection
   * state. Synchronous, so no delivery is lost or sent twice in between.
   * False when `conn` is not subscribed.
   */
  setEncoder(conn: Connection, channel: string, encoder: ChannelEncoder): boolean {
    const appId = conn.app?.id;
    const local = appId === undefined ? undefined : this.apps.get(appId)?.get(channel);
    const subscriber = local?.subscribers.get(conn.id);
    if (!local || !subscriber) return false;
    if (subscriber.encoder === encoder) return true;
    this.leaveTopic(local, subscriber);
    subscriber.encoder = encoder;
    this.joinTopic(local, subscriber);
    return true;
  }

  /** Puts a live subscriber on its encoder's uWS topic, if it has one. */
  private joinTopic(local: LocalChannel, s: Subscriber): void {
    const { encoder } = s;
    const key = encoder.topic;
    if (!key || s.buffer) return;
    let t = local.topics.find((x) => x.key === key);
    if (!t) {
      t = { key, name: topicOf(local.appId, local.name, key), encoder, count: 0 };
      // concat sizes the copy exactly; a spread grows it to 17 slots (136 B more per channel).
      local.topics = local.topics.concat(t);
    }
    s.conn.ws.subscribe(t.name);
    t.count++;
  }

  /** Takes a subscriber off its topic; one still replaying never joined it. */
  private leaveTopic(local: LocalChannel, s: Subscriber): void {
    const topicKey = s.encoder.topic;
    if (!topicKey || s.buffer) return;
    const t = local.topics.find((x) => x.key === topicKey);
    if (!s.conn.closed)
      s.conn.ws.unsubscribe(t ? t.name : topicOf(local.appId, local.name, topicKey));
    if (t && --t.count === 0) local.topics = local.topics.filter((x) => x !== t);
  }

  /** Drops every subscription of a closing connection. */
  leaveAll(conn: Connection): void {
    for (const channel of [...conn.channels]) this.leave(conn, channel);
  }

  /** Channels with local subscribers (live or replaying), in all. */
  channelTotal(): number {
    return this.channelCount;
  }

  /** Channels with local subscribers per app, for apps that have one. */
  *appChannelCounts(): Iterable<[appId: string, channels: number]> {
    for (const [appId, channels] of this.apps) yield [appId, channels.size];
  }

  private stillSubscribed(local: LocalChannel, s: Subscriber): boolean {
    return !s.conn.closed && local.subscribers.get(s.conn.id) === s;
  }

  private local(appId: string, channel: string, slowConsumerBytes: number): LocalChannel {
    let channels = this.apps.get(appId);
    const found = channels?.get(channel);
    if (found) return found;
    if (!channels) {
      channels = new Map();
      this.apps.set(appId, channels);
    }
    // The engine may deliver before `subscribe` returns; until then there is no one to tell.
    let made: LocalChannel | undefined;
    const sub = this.engine.subscribe(
      appId,
      channel,
      (d) => {
        if (made) this.deliver(made, d);
      },
      { onGap: (gap) => made && this.gap(made, gap) },
    );
    made = {
      appId,
      name: channel,
      sub,
      subscribers: new Subscribers(),
      topics: NO_TOPICS,
      aheadUpTo: 0,
      deliveredUpTo: 0,
      unchecked: 0,
      checkEvery: Math.ceil(slowConsumerBytes / CHECKS_PER_LIMIT),
    };
    channels.set(channel, made);
    this.channelCount++;
    this.metrics.channels.set(this.channelCount);
    return made;
  }

  /** Drops a channel from the hub's map, if it is still the one there. */
  private forget(local: LocalChannel): void {
    const channels = this.apps.get(local.appId);
    if (channels?.get(local.name) !== local) return;
    channels.delete(local.name);
    if (channels.size === 0) this.apps.delete(local.appId);
    this.channelCount--;
    this.metrics.channels.set(this.channelCount);
  }

  /**
   * The engine could not deliver some of the channel's events in time and
   * ended the subscription: every subscriber here may have missed them, so
   * each is closed with its dialect's reconnect code and replays from its
   * last seq. The next join starts a fresh engine subscription.
   */
  private gap(local: LocalChannel, gap: DeliveryGap): void {
    this.forget(local);
    const told = [...local.subscribers.values()].map((s) => s.conn);
    local.subscribers.clear();
    local.topics = NO_TOPICS;
    this.metrics.liveGaps.inc({ app: local.appId });
    this.log.warn(
      {
        app: local.appId,
        channel: local.name,
        afterSeq: gap.afterSeq,
        beforeSeq: gap.beforeSeq,
        reason: gap.reason,
        subscribers: told.length,
      },
      "live events could not be delivered in time; closing the channel's subscribers so they replay",
    );
    for (const conn of told) this.outlet.closeForReplay(conn);
  }

  private deliver(local: LocalChannel, d: Delivery): void {
    const { name: channel, subscribers } = local;
    const version = versionOf(d);
    if (version !== undefined) {
      // Not newer than one already delivered: a new presence owner sending its
      // predecessor's last signals again (in case they were lost), or a stale owner.
      if (local.lastVersion && compareVersions(version, local.lastVersion) <= 0) return;
      local.lastVersion = version;
    }
    const excluded = excludedConnection(d);
    // A membership change some live subscriber's list already has, or an event
    // some live subscriber already got from its replay, cannot go through a
    // topic (it would reach that subscriber too): each gets its own.
    const seq = d.type === "event" ? d.event.seq : undefined;
    if (seq !== undefined) local.deliveredUpTo = seq;
    const behind = seq !== undefined && seq <= local.aheadUpTo;
    // Events come in seq order: once one passes every subscriber's start, none is behind.
    if (seq !== undefined && !behind) local.aheadUpTo = 0;
    const oneByOne = behind || (version !== undefined && someCovered(subscribers, d));
    let onTopics = 0;
    let sent = 0;
    for (const { key: topicKey, name: topic, encoder, count } of oneByOne ? [] : local.topics) {
      const bytes = safeEncode(encoder, channel, d, this.log);
      if (bytes === null) continue;
      onTopics += count;
      if (bytes.length > sent) sent = bytes.length;
      const sender = excluded ? subscribers.get(excluded) : undefined;
      if (sender && !sender.buffer && sender.encoder.topic === topicKey && !sender.conn.closed) {
        // ws.publish reaches every socket on the topic except the sender's own.
        sender.conn.ws.publish(topic, bytes, false);
        this.metrics.messagesOut.inc({ app: local.appId, dialect: topicKey }, count - 1);
      } else {
        this.outlet.publish(topic, bytes);
        this.metrics.messagesOut.inc({ app: local.appId, dialect: topicKey }, count);
      }
    }
    // uWS queues what a socket cannot take yet; checking closes a slow consumer
    // in its dialect's terms before uWS's hard stop. Asking every socket after
    // every event would be a native call per delivery (≈2.5% of a big channel's
    // fan-out CPU): the channel asks once it has sent `checkEvery`.
    local.unchecked += sent;
    const check = local.unchecked >= local.checkEvery;
    if (check) local.unchecked = 0;
    // Every subscriber reached through a topic and no check due: nothing left to do.
    if (onTopics === subscribers.size && !check) return;
    // One pass for what the topics did not cover: replays in flight and
    // per-subscriber encoders; and the check, when due.
    let direct = 0;
    for (const s of subscribers.values()) {
      if (s.buffer) {
        if (s.conn.id === excluded) continue;
        // Live events outpacing a replay: the client reconnects and resumes from its last seq.
        if (s.buffer.length >= MAX_REPLAY_BUFFER) this.outlet.closeSlowConsumer(s.conn);
        else s.buffer.push(d);
        continue;
      }
      if ((oneByOne || !s.encoder.topic) && s.conn.id !== excluded && !covered(s, d)) {
        if (!(seq !== undefined && s.sentUpTo !== undefined && seq <= s.sentUpTo))
          direct = Math.max(direct, this.sendDirect(s, channel, d));
      }
      if (check && s.conn.bufferedAmount() > s.slowConsumerBytes)
        this.outlet.closeSlowConsumer(s.conn);
    }
    local.unchecked += direct;
  }

  /** Sends `d` to one subscriber; returns the frame's length (UTF-16 units), 0 if none went. */
  private sendDirect(s: Subscriber, channel: string, d: Delivery): number {
    const bytes = safeEncode(s.encoder, channel, d, this.log);
    if (bytes === null || !s.conn.send(bytes)) return 0;
    this.metrics.messagesOut.inc({ app: s.conn.app?.id ?? "", dialect: s.conn.dialect });
    return bytes.length;
  }
}

/**
 * Which connection must not get this delivery: the publisher of a
 * sender-excluded event, or the connection that caused a signal.
 */
function excludedConnection(d: Delivery): string | undefined {
  return d.type === "event" ? d.event.excludeConnectionId : d.signal.excludeConnectionId;
}

/** Where a membership change stands (see `PresenceVersion`); undefined for anything else. */
function versionOf(d: Delivery): PresenceVersion | undefined {
  return d.type === "signal" ? d.signal.version : undefined;
}

/** The subscriber's member list already has this change. */
function covered(s: Subscriber, d: Delivery): boolean {
  const v = versionOf(d);
  return v !== undefined && s.covers !== undefined && compareVersions(v, s.covers) <= 0;
}

function someCovered(subscribers: Subscribers<Subscriber>, d: Delivery): boolean {
  for (const s of subscribers.values()) if (!s.buffer && covered(s, d)) return true;
  return false;
}

function safeEncode(
  encoder: ChannelEncoder,
  channel: string,
  d: Delivery,
  log: Logger,
): string | null {
  try {
    return encoder.encode(channel, d);
  } catch (err) {
    log.error({ err, channel }, "encoder failed; delivery skipped for this dialect");
    return null;
  }
}

const NO_TOPICS: readonly Topic[] = [];

export function topicOf(appId: string, channel: string, encoderTopic: string): string {
  return `${encoderTopic}\u0000${appId}\u0000${channel}`;
}
