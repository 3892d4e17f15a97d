import { channelAllowed, channelKind } from "../../../../../shared/src/channels.js";
import { seqOfEventId } from "../../../../../shared/src/model.js";
import type { DialectContext } from "../../core/dialect.js";
import type { ChannelEncoder } from "../../core/hub.js";
import type { JoinPlan } from "../../core/join-plan.js";
import { atLeastOnceReplay, recordAck } from "./acks.js";
import { type Command, encode, encodeDelivery, type Ref } from "./codec.js";
import { HeraldRequestError } from "./codes.js";
import { publishKey } from "./dedupe.js";
import { applyReaction } from "./reactions.js";
import type { HeraldSession } from "./state.js";

/** Every Herald subscriber shares these bytes, so uWS fans them out. */
const heraldEncoder: ChannelEncoder = { topic: "herald", encode: encodeDelivery };

const TYPING_EXPIRY_MS = 5000;

/** Handlers for authenticated Herald requests. Errors are thrown as HeraldRequestError. */
export class HeraldCommands {
  constructor(private readonly ctx: Pick<DialectContext, "blocks">) {}

  async handle(h: HeraldSession, ref: Ref, c: Command): Promise<void> {
    const { session } = h;
    const { conn, userId } = session;
    switch (c.type) {
      case "ping":
        conn.send(encode.pong(ref));
        return;
      case "presence.set":
        return session.setStatus(userId, c.status);
      case "subscribe":
        // The permit (a block lookup on first use) runs in turn too: awaited
        // before it, an unsubscribe sent right after would overtake this
        // subscribe and find nothing to end, leaving the user subscribed.
        return session.inOrder(c.stream_id, async () => {
          await this.permit(h, c.stream_id);
          await this.subscribe(h, ref, c);
        });
      case "unsubscribe":
        return session.inOrder(c.stream_id, () => this.unsubscribe(h, c.stream_id));
      case "event.publish": {
        await this.permit(h, c.stream_id);
        const r = await session.publish(
          c.stream_id,
          { name: c.event_type, data: c.body, meta: c.meta, userId },
          ref === undefined ? undefined : publishKey(userId, ref, c.event_type, c.body, c.meta),
        );
        conn.send(encode.eventAck(ref, r.id, r.seq));
        return;
      }
      case "event.trigger":
        await this.permit(h, c.stream_id);
        if (!h.triggers.take())
          throw new HeraldRequestError("rate_limited", "too many ephemeral events");
        session.signal(c.stream_id, {
          kind: "transient",
          name: c.event_type,
          data: c.body,
          userId,
          excludeConnectionId: conn.id,
        });
        return;
      case "events.fetch": {
        await this.permit(h, c.stream_id);
        const page = await session.history(c.stream_id, {
          afterSeq: c.after_seq,
          beforeSeq: c.before_seq,
          limit: c.limit,
        });
        conn.send(encode.eventsBatch(ref, c.stream_id, page.events, page.hasMore));
        return;
      }
      case "cursor.update":
        await this.permit(h, c.stream_id);
        await session.store("cursors").put(pairKey(userId, c.stream_id), c.seq);
        session.signal(c.stream_id, {
          kind: "cursor",
          userId,
          seq: c.seq,
          excludeConnectionId: conn.id,
        });
        return;
      case "typing.start":
      case "typing.stop":
        await this.permit(h, c.stream_id);
        return this.typing(h, c.stream_id, c.type === "typing.start");
      case "reaction.add":
      case "reaction.remove": {
        await this.permit(h, c.stream_id);
        const action = c.type === "reaction.add" ? "add" : "remove";
        const seq = seqOfEventId(c.event_id);
        if (seq === null || !(await session.event(c.stream_id, seq)))
          throw new HeraldRequestError(
            "not_found",
            `event ${c.event_id} not found in ${c.stream_id}`,
          );
        const key = JSON.stringify([c.stream_id, c.event_id, c.emoji]);
        const count = await applyReaction(session.store("reactions"), key, userId, action);
        session.signal(c.stream_id, {
          kind: "reaction",
          userId,
          eventId: c.event_id,
          emoji: c.emoji,
          action,
          count,
        });
        return;
      }
      case "event.ack": {
        await this.permit(h, c.stream_id);
        const seq = seqOfEventId(c.event_id);
        if (seq === null)
          throw new HeraldRequestError("not_found", `event ${c.event_id} not found`);
        return recordAck(session.store("acks"), pairKey(userId, c.stream_id), seq);
      }
    }
  }

  /** Typing indicators end with the connection; subscriptions and presence end in the core. */
  closed(h: HeraldSession): void {
    for (const [streamId, timer] of h.typing) {
      clearTimeout(timer);
      this.signalTyping(h, streamId, false);
    }
    h.typing.clear();
  }

  /** A block arrived for a stream: end the subscription and say why. */
  blocked(h: HeraldSession, streamId: string, blocked: boolean): void {
    h.blocked.set(streamId, blocked);
    if (!blocked || !h.session.subscribed(streamId)) return;
    void h.session.inOrder(streamId, () => this.unsubscribe(h, streamId));
    h.session.conn.send(
      encode.error(undefined, "blocked", `you were blocked in stream ${streamId}`),
    );
  }

  /**
   * The token grants the stream and the user is not blocked in it. Answers
   * synchronously once the stream's block state is known; commands waiting
   * on one lookup resume in the order they arrived.
   */
  private permit(h: HeraldSession, streamId: string): void | Promise<void> {
    const { streams, prefixMatch } = h.grant;
    const ok = prefixMatch ? channelAllowed(streamId, streams) : streams.includes(streamId);
    if (!ok) throw new HeraldRequestError("forbidden", `stream ${streamId} is not in your token`);
    const known = h.blocked.get(streamId) ?? this.lookupBlock(h, streamId);
    if (known === false) return;
    if (known === true) throw blockedError(streamId);
    return known.then((blocked) => {
      if (blocked) throw blockedError(streamId);
    });
  }

  private lookupBlock(h: HeraldSession, streamId: string): Promise<boolean> {
    const { app, userId } = h.session;
    const lookup: Promise<boolean> = this.ctx.blocks
      .isBlocked(app.id, streamId, userId)
      .then((blocked) => {
        // A `blocked` signal that came in meanwhile is newer than what KV said.
        const now = h.blocked.get(streamId);
        if (now !== lookup) return now === true;
        h.blocked.set(streamId, blocked);
        return blocked;
      })
      .catch((err: unknown) => {
        if (h.blocked.get(streamId) === lookup) h.blocked.delete(streamId);
        throw err;
      });
    h.blocked.set(streamId, lookup);
    return lookup;
  }

  private async subscribe(h: HeraldSession, ref: Ref, c: Command & { type: "subscribe" }) {
    const { session } = h;
    const streamId = c.stream_id;
    if (session.subscribed(streamId)) this.unsubscribe(h, streamId);
    const member = channelKind(streamId).presence;
    const plan = async (): Promise<JoinPlan> => {
      const key = pairKey(session.userId, streamId);
      const cursor = (await session.store("cursors").get(key))?.value;
      const replay =
        c.delivery === "at_least_once"
          ? await atLeastOnceReplay(
              session.store("acks"),
              key,
              () => session.lastSeq(streamId),
              c.last_seq,
            )
          : undefined;
      if (replay) h.atLeastOnce.add(streamId);
      else h.atLeastOnce.delete(streamId);
      return {
        encoder: heraldEncoder,
        afterSeq: replay ? replay.afterSeq : c.last_seq,
        skip: replay?.skip,
        presence: { member, info: h.grant.userInfo },
        beforeEvents: (joined) => {
          session.conn.send(
            encode.subscribed(ref, {
              stream_id: streamId,
              seq: joined.lastSeq,
              subscriber_count: joined.subscriberCount,
              cursor: typeof cursor === "number" ? cursor : undefined,
              members: member
                ? joined.members.map((m) => ({ user_id: m.userId, status: m.status }))
                : undefined,
              replay: joined.truncated ? "truncated" : undefined,
            }),
          );
        },
      };
    };
    try {
      await session.join(streamId, plan);
    } catch (err) {
      h.atLeastOnce.delete(streamId);
      throw err;
    }
  }

  private unsubscribe(h: HeraldSession, streamId: string): void {
    h.session.leave(streamId);
    h.atLeastOnce.delete(streamId);
  }

  private typing(h: HeraldSession, streamId: string, active: boolean): void {
    const previous = h.typing.get(streamId);
    if (previous) clearTimeout(previous);
    h.typing.delete(streamId);
    if (active) {
      // A start without a stop (client crashed, tab closed) must not leave the indicator on.
      const timer = setTimeout(() => {
        h.typing.delete(streamId);
        this.signalTyping(h, streamId, false);
      }, TYPING_EXPIRY_MS);
      h.typing.set(streamId, timer);
    }
    this.signalTyping(h, streamId, active);
  }

  private signalTyping(h: HeraldSession, streamId: string, active: boolean): void {
    const { session } = h;
    session.signal(streamId, {
      kind: "typing",
      userId: session.userId,
      active,
      excludeConnectionId: session.id,
    });
  }
}

function blockedError(streamId: string): HeraldRequestError {
  return new HeraldRequestError("blocked", `you are blocked in stream ${streamId}`);
}

function pairKey(userId: string, streamId: string): string {
  return JSON.stringify([userId, streamId]);
}
