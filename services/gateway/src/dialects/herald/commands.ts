import { channelAllowed, channelKind } from "../../../../../shared/src/channels.js";
import { type KvStore, seqOfEventId } from "../../../../../shared/src/engine/engine.js";
import type { SubscribeOutcome } from "../../../../../shared/src/presence/api.js";
import type { Connection } from "../../core/connection.js";
import type { GatewayContext } from "../../core/dialect.js";
import type { HeldFrames } from "../../core/held-frames.js";
import type { ChannelEncoder } from "../../core/hub.js";
import type { TokenBucket } from "../../core/rate.js";
import { type Command, encode, encodeDelivery, type Ref } from "./codec.js";
import { HeraldRequestError } from "./codes.js";
import { publishKey } from "./dedupe.js";
import type { HeraldGrant } from "./token.js";

export interface HeraldSession {
  grant: HeraldGrant | undefined;
  /** Frames received before auth finished. */
  early: HeldFrames;
  typing: Map<string, NodeJS.Timeout>;
  atLeastOnce: Set<string>;
  triggers: TokenBucket;
  /**
   * Whether the user is blocked in a stream (HTTP API): looked up on the
   * stream's first use (a promise while the lookup runs), then kept current
   * by `blocked` user signals.
   */
  blocked: Map<string, boolean | Promise<boolean>>;
  /** The tail of each stream's subscribe/unsubscribe chain. */
  streamOps: Map<string, Promise<void>>;
  /**
   * Streams whose subscribe is in flight and not yet joined: they hold a slot
   * of the subscription limit, so a burst of subscribes cannot pass it while
   * the first ones wait on storage.
   */
  joining: Set<string>;
}

/** Every Herald subscriber shares these bytes, so uWS fans them out. */
const heraldEncoder: ChannelEncoder = { topic: "herald", encode: encodeDelivery };

const TYPING_EXPIRY_MS = 5000;
/** Acked seqs remembered per (user, stream) beyond the contiguous floor. */
const MAX_ACKED = 5000;

/** At-least-once state per (user, stream): delivery starts after `start`. */
interface AckState {
  start: number;
  acked: number[];
}

/** Handlers for authenticated Herald requests. Errors are thrown as HeraldRequestError. */
export class HeraldCommands {
  constructor(private readonly ctx: GatewayContext) {}

  async handle(conn: Connection, s: HeraldSession, ref: Ref, c: Command): Promise<void> {
    const app = conn.app!;
    const userId = conn.userId!;
    switch (c.type) {
      case "ping":
        conn.send(encode.pong(ref));
        return;
      case "presence.set":
        await this.ctx.presence.setStatus(app.id, userId, c.status);
        return;
      case "subscribe":
        // The permit (a block lookup on first use) runs in turn too: awaited
        // before it, an unsubscribe sent right after would overtake this
        // subscribe and find nothing to end, leaving the user subscribed.
        return inOrder(s, c.stream_id, async () => {
          await this.permit(conn, s, c.stream_id);
          await this.subscribe(conn, s, ref, c);
        });
      case "unsubscribe":
        return inOrder(s, c.stream_id, () => this.unsubscribe(conn, s, c.stream_id));
      case "event.publish": {
        await this.permit(conn, s, c.stream_id);
        const started = performance.now();
        const r = await this.ctx.engine.publish(
          app.id,
          c.stream_id,
          { name: c.event_type, data: c.body, meta: c.meta, userId },
          {
            idempotencyKey:
              ref === undefined ? undefined : publishKey(userId, ref, c.event_type, c.body, c.meta),
          },
        );
        this.ctx.metrics.publishLatency.observe(
          { dialect: "herald" },
          (performance.now() - started) / 1000,
        );
        conn.send(encode.eventAck(ref, r.id, r.seq));
        return;
      }
      case "event.trigger":
        await this.permit(conn, s, c.stream_id);
        if (!s.triggers.take())
          throw new HeraldRequestError("rate_limited", "too many ephemeral events");
        this.ctx.engine.signal(app.id, c.stream_id, {
          kind: "trigger",
          name: c.event_type,
          data: c.body,
          userId,
          connectionId: conn.id,
        });
        return;
      case "events.fetch": {
        await this.permit(conn, s, c.stream_id);
        const page = await this.ctx.engine.history(app.id, c.stream_id, {
          afterSeq: c.after_seq,
          beforeSeq: c.before_seq,
          limit: c.limit,
        });
        conn.send(encode.eventsBatch(ref, c.stream_id, page.events, page.hasMore));
        return;
      }
      case "cursor.update":
        await this.permit(conn, s, c.stream_id);
        await this.ctx.engine.kv(app.id, "cursors").put(pairKey(userId, c.stream_id), c.seq);
        this.ctx.engine.signal(app.id, c.stream_id, {
          kind: "cursor",
          userId,
          seq: c.seq,
          connectionId: conn.id,
        });
        return;
      case "typing.start":
      case "typing.stop":
        await this.permit(conn, s, c.stream_id);
        return this.typing(conn, s, c.stream_id, c.type === "typing.start");
      case "reaction.add":
      case "reaction.remove":
        await this.permit(conn, s, c.stream_id);
        return this.react(
          conn,
          c.stream_id,
          c.event_id,
          c.emoji,
          c.type === "reaction.add" ? "add" : "remove",
        );
      case "event.ack":
        await this.permit(conn, s, c.stream_id);
        return this.ack(conn, c.stream_id, c.event_id);
    }
  }

  closed(conn: Connection, s: HeraldSession): void {
    for (const [streamId, timer] of s.typing) {
      clearTimeout(timer);
      this.signalTyping(conn, streamId, false);
    }
    s.typing.clear();
    if (conn.app && conn.userId) {
      this.ctx.presence.connectionClosed(conn.app.id, conn.id).catch((err: unknown) => {
        conn.log.warn({ err }, "presence close report failed");
      });
    }
  }

  /**
   * The token grants the stream and the user is not blocked in it. Answers
   * synchronously once the stream's block state is known; commands waiting
   * on one lookup resume in the order they arrived.
   */
  private permit(conn: Connection, s: HeraldSession, streamId: string): void | Promise<void> {
    const streams = s.grant?.streams ?? [];
    const ok = s.grant?.prefixMatch
      ? channelAllowed(streamId, streams)
      : streams.includes(streamId);
    if (!ok) throw new HeraldRequestError("forbidden", `stream ${streamId} is not in your token`);
    const known = s.blocked.get(streamId) ?? this.lookupBlock(conn, s, streamId);
    if (known === false) return;
    if (known === true) throw blockedError(streamId);
    return known.then((blocked) => {
      if (blocked) throw blockedError(streamId);
    });
  }

  private lookupBlock(conn: Connection, s: HeraldSession, streamId: string): Promise<boolean> {
    const lookup: Promise<boolean> = this.ctx.blocks
      .isBlocked(conn.app!.id, streamId, conn.userId!)
      .then((blocked) => {
        // A `blocked` signal that came in meanwhile is newer than what KV said.
        const now = s.blocked.get(streamId);
        if (now !== lookup) return now === true;
        s.blocked.set(streamId, blocked);
        return blocked;
      })
      .catch((err: unknown) => {
        if (s.blocked.get(streamId) === lookup) s.blocked.delete(streamId);
        throw err;
      });
    s.blocked.set(streamId, lookup);
    return lookup;
  }

  /** A block arrived for a stream: end the subscription and say why. */
  blocked(conn: Connection, s: HeraldSession, streamId: string, blocked: boolean): void {
    s.blocked.set(streamId, blocked);
    if (!blocked || !conn.channels.has(streamId)) return;
    void inOrder(s, streamId, () => this.unsubscribe(conn, s, streamId));
    conn.send(encode.error(undefined, "blocked", `you were blocked in stream ${streamId}`));
  }

  private async subscribe(
    conn: Connection,
    s: HeraldSession,
    ref: Ref,
    c: Command & { type: "subscribe" },
  ) {
    const app = conn.app!;
    const userId = conn.userId!;
    const streamId = c.stream_id;
    if (conn.channels.has(streamId)) this.unsubscribe(conn, s, streamId);
    if (conn.channels.size + s.joining.size >= app.limits.maxSubscriptions) {
      throw new HeraldRequestError(
        "rate_limited",
        `at most ${app.limits.maxSubscriptions} subscriptions`,
      );
    }
    s.joining.add(streamId);
    let cursorEntry: Awaited<ReturnType<KvStore["get"]>>;
    let afterSeq = c.last_seq;
    let skip: ((e: { seq: number }) => boolean) | undefined;
    try {
      cursorEntry = await this.ctx.engine.kv(app.id, "cursors").get(pairKey(userId, streamId));
      if (c.delivery === "at_least_once") {
        const acks = this.ctx.engine.kv(app.id, "acks");
        const state = await loadAckState(acks, pairKey(userId, streamId), () =>
          this.ctx.engine.lastSeq(app.id, streamId),
        );
        const acked = new Set(state.acked);
        const lastSeq = c.last_seq;
        // Unacked events since the first at-least-once subscribe come again; anything
        // after last_seq is replayed whether acked or not, as a plain replay would.
        afterSeq = lastSeq === undefined ? state.start : Math.min(state.start, lastSeq);
        skip = (e) => acked.has(e.seq) && (lastSeq === undefined || e.seq <= lastSeq);
        s.atLeastOnce.add(streamId);
      } else s.atLeastOnce.delete(streamId);
    } finally {
      // From the hub's join on (synchronously next) conn.channels counts the stream.
      s.joining.delete(streamId);
    }

    let presence: SubscribeOutcome & { ok: true };
    await this.ctx.hub.join(conn, streamId, heraldEncoder, {
      afterSeq,
      skip,
      // Joined once the stream's signals flow, so no member change falls between.
      snapshot: async () => {
        const outcome = await this.ctx.presence.subscribe({
          appId: app.id,
          channel: streamId,
          connectionId: conn.id,
          userId,
          info: s.grant?.userInfo,
          member: channelKind(streamId).presence,
          maxMembers: app.limits.maxPresenceMembers,
        });
        if (!outcome.ok) {
          s.atLeastOnce.delete(streamId);
          throw new HeraldRequestError("stream_full", `stream ${streamId} is full`);
        }
        presence = outcome;
        return outcome.version;
      },
      beforeEvents: ({ lastSeq, truncated }) => {
        conn.send(
          encode.subscribed(ref, {
            stream_id: streamId,
            seq: lastSeq,
            subscriber_count: presence.subscriberCount,
            cursor: typeof cursorEntry?.value === "number" ? cursorEntry.value : undefined,
            members: channelKind(streamId).presence
              ? presence.members.map((m) => ({ user_id: m.userId, status: m.status }))
              : undefined,
            replay: truncated ? "truncated" : undefined,
          }),
        );
      },
    });
  }

  private unsubscribe(conn: Connection, s: HeraldSession, streamId: string): void {
    if (!conn.channels.has(streamId)) return;
    this.ctx.hub.leave(conn, streamId);
    s.atLeastOnce.delete(streamId);
    this.ctx.presence.unsubscribe(conn.app!.id, streamId, conn.id).catch((err: unknown) => {
      conn.log.warn({ err }, "presence unsubscribe report failed");
    });
  }

  private typing(conn: Connection, s: HeraldSession, streamId: string, active: boolean): void {
    const previous = s.typing.get(streamId);
    if (previous) clearTimeout(previous);
    s.typing.delete(streamId);
    if (active) {
      // A start without a stop (client crashed, tab closed) must not leave the indicator on.
      const timer = setTimeout(() => {
        s.typing.delete(streamId);
        this.signalTyping(conn, streamId, false);
      }, TYPING_EXPIRY_MS);
      s.typing.set(streamId, timer);
    }
    this.signalTyping(conn, streamId, active);
  }

  private signalTyping(conn: Connection, streamId: string, active: boolean): void {
    this.ctx.engine.signal(conn.app!.id, streamId, {
      kind: "typing",
      userId: conn.userId!,
      active,
      connectionId: conn.id,
    });
  }

  private async react(
    conn: Connection,
    streamId: string,
    eventId: string,
    emoji: string,
    action: "add" | "remove",
  ): Promise<void> {
    const app = conn.app!;
    const userId = conn.userId!;
    const seq = seqOfEventId(eventId);
    if (seq === null || !(await this.ctx.engine.getEvent(app.id, streamId, seq))) {
      throw new HeraldRequestError("not_found", `event ${eventId} not found in ${streamId}`);
    }
    const kv = this.ctx.engine.kv(app.id, "reactions");
    const key = JSON.stringify([streamId, eventId, emoji]);
    // Compare-and-set so concurrent reactions on other gateways are not lost.
    for (;;) {
      const entry = await kv.get(key);
      const users = new Set(Array.isArray(entry?.value) ? (entry.value as string[]) : []);
      const had = users.has(userId);
      if (action === "add") users.add(userId);
      else users.delete(userId);
      if (had === (action === "add")) {
        return this.signalReaction(conn, streamId, eventId, emoji, action, users.size);
      }
      const value = [...users];
      const written = entry
        ? await kv.update(key, value, entry.revision)
        : await kv.create(key, value);
      if (written !== null)
        return this.signalReaction(conn, streamId, eventId, emoji, action, users.size);
    }
  }

  private signalReaction(
    conn: Connection,
    streamId: string,
    eventId: string,
    emoji: string,
    action: "add" | "remove",
    count: number,
  ): void {
    this.ctx.engine.signal(conn.app!.id, streamId, {
      kind: "reaction",
      userId: conn.userId!,
      eventId,
      emoji,
      action,
      count,
    });
  }

  private async ack(conn: Connection, streamId: string, eventId: string): Promise<void> {
    const app = conn.app!;
    const seq = seqOfEventId(eventId);
    if (seq === null) throw new HeraldRequestError("not_found", `event ${eventId} not found`);
    const acks = this.ctx.engine.kv(app.id, "acks");
    const key = pairKey(conn.userId!, streamId);
    for (;;) {
      const entry = await acks.get(key);
      if (!entry)
        throw new HeraldRequestError(
          "invalid_payload",
          "no at-least-once subscription to this stream",
        );
      const state = entry.value as unknown as AckState;
      if (seq <= state.start || state.acked.includes(seq)) return;
      const acked = [...state.acked, seq].sort((a, b) => a - b).slice(-MAX_ACKED);
      if ((await acks.update(key, { start: state.start, acked }, entry.revision)) !== null) return;
    }
  }
}

/**
 * Runs a stream's subscribes and unsubscribes one after another, in the
 * order the client sent them: a subscribe waits on presence and storage, so
 * without this an unsubscribe (or a second subscribe) sent right after it
 * could finish first and leave the wrong state behind.
 */
function blockedError(streamId: string): HeraldRequestError {
  return new HeraldRequestError("blocked", `you are blocked in stream ${streamId}`);
}

function inOrder(
  s: HeraldSession,
  streamId: string,
  op: () => Promise<void> | void,
): Promise<void> {
  const previous = s.streamOps.get(streamId) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(op);
  s.streamOps.set(streamId, next);
  const forget = () => {
    if (s.streamOps.get(streamId) === next) s.streamOps.delete(streamId);
  };
  next.then(forget, forget);
  return next;
}

async function loadAckState(
  kv: KvStore,
  key: string,
  lastSeq: () => Promise<number>,
): Promise<AckState> {
  for (;;) {
    const entry = await kv.get(key);
    if (entry) return entry.value as unknown as AckState;
    const state: AckState = { start: await lastSeq(), acked: [] };
    if ((await kv.create(key, { start: state.start, acked: [] })) !== null) return state;
  }
}

function pairKey(userId: string, streamId: string): string {
  return JSON.stringify([userId, streamId]);
}
