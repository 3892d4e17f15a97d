import { DedupeWindow } from "./dedupe.js";
import { Emitter } from "./emitter.js";
import { HeraldError } from "./errors.js";
import {
  type FetchParams,
  type HistoryOptions,
  type HistoryPage,
  historyPages,
} from "./history.js";
import { OwnTyping, TypingTracker } from "./typing.js";
import type {
  CursorMove,
  Frame,
  HeraldEvent,
  Json,
  Member,
  PresenceChange,
  PublishAck,
  ReactionChange,
  TriggerEvent,
  TypingChange,
} from "./wire.js";

export interface StreamOptions {
  /**
   * `"at_least_once"`: the gateway remembers which events this user acked and
   * sends the unacked ones again after a reconnect, on any gateway. The SDK
   * acks each event once every `event` listener has returned (or its promise
   * resolved); a listener that throws or rejects leaves it unacked, so it
   * comes again after the next reconnect. Listeners then run one event at a time.
   */
  delivery?: "at_least_once";
  /** Replay stored events after this seq on the first subscribe (default: live only). */
  fromSeq?: number;
}

/** What `subscribed` said, plus whether it resumed an earlier subscription. */
export interface SubscribedInfo {
  stream_id: string;
  /** The stream's latest seq when the subscription started. */
  seq: number;
  subscriber_count: number;
  /** This user's read cursor in the stream, if set. */
  cursor?: number;
  members?: Member[];
  replay?: "truncated";
  /** True when this is a resubscribe after a reconnect (replay from `lastSeq`). */
  resumed: boolean;
}

/**
 * Events the SDK could not give you. `truncated`: some of what was published
 * while you were away already left history. `reset`: the stream's seq went
 * backwards (a gateway on the memory engine restarted), so history was lost.
 * Either way: reload from history (`stream.history()`).
 */
export interface MissedEvents {
  stream_id: string;
  reason: "truncated" | "reset";
  /** The highest seq the SDK had delivered. */
  lastSeq: number;
  /** The stream's latest seq per the gateway. */
  seq: number;
}

export type MemberChange = { user_id: string; action: "joined" | "left" | "status" };

export interface StreamEvents {
  /** A stored event, once, in seq order. Return a promise to delay the at-least-once ack. */
  event: [event: HeraldEvent];
  /** An ephemeral event (`event.trigger`) from another connection. */
  trigger: [event: TriggerEvent];
  /** Someone's typing changed; `typing` lists everyone typing now. */
  typing: [change: TypingChange, typing: string[]];
  cursor: [move: CursorMove];
  reaction: [change: ReactionChange];
  /** Membership of a `presence-` stream (with statuses) after a change or a (re)subscribe. */
  members: [members: Member[], change: MemberChange | undefined];
  subscriberCount: [count: number];
  subscribed: [info: SubscribedInfo];
  missed: [missed: MissedEvents];
  /** A refused request on this stream, or a listener's failure. */
  error: [error: Error];
}

export type StreamStatus = "subscribing" | "subscribed" | "failed" | "unsubscribed";

/** What a Stream needs of its client. */
export interface StreamHost {
  readonly connected: boolean;
  /** Sends now with a ref whose error reaches `stream`; dropped while offline. */
  sendEphemeral(stream: Stream, type: string, payload: Record<string, unknown>): boolean;
  /** Sends now, or once connected (bounded queue). */
  sendDurable(stream: Stream, type: string, payload: Record<string, unknown>): void;
  /** Sends and waits for the reply carrying its ref; resent after a reconnect until answered. */
  request(type: string, payload: Record<string, unknown>): Promise<Frame>;
  publish(
    streamId: string,
    type: string,
    body: Json,
    meta: { [key: string]: Json } | undefined,
  ): Promise<PublishAck>;
  subscribe(stream: Stream, payload: Record<string, unknown>): void;
  unsubscribe(stream: Stream): void;
}

/** Codes after which resubscribing cannot help. */
const FINAL_SUBSCRIBE_ERRORS = new Set([
  "forbidden",
  "blocked",
  "stream_full",
  "invalid_payload",
  "not_found",
  "auth_failed",
]);

/**
 * One stream subscription: it lives across reconnects (resubscribing with
 * the highest seq it delivered) until `unsubscribe()`.
 */
export class Stream extends Emitter<StreamEvents> {
  private _status: StreamStatus = "subscribing";
  private _lastSeq: number | undefined;
  private subscribedOnce = false;
  private readonly seen: DedupeWindow;
  private readonly acked: DedupeWindow;
  private readonly membersById = new Map<string, Member>();
  private readonly typingTracker: TypingTracker;
  private readonly ownTyping: OwnTyping;
  private handlers: Promise<void> = Promise.resolve();
  private readyResolve!: (info: SubscribedInfo) => void;
  private readyReject!: (err: Error) => void;
  /** The first `subscribed` (or the error that refused it). */
  readonly ready: Promise<SubscribedInfo>;
  subscriberCount = 0;
  /** This user's read cursor, from `subscribed` and own/other connections' `cursor.moved`. */
  cursor: number | undefined;

  constructor(
    readonly id: string,
    private readonly host: StreamHost,
    readonly options: StreamOptions,
    dedupeCapacity: number,
    private readonly userId: () => string | undefined,
  ) {
    super();
    this.seen = new DedupeWindow(dedupeCapacity);
    this.acked = new DedupeWindow(dedupeCapacity);
    this._lastSeq = options.fromSeq;
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Callers that only use listeners should not see an unhandled rejection.
    this.ready.catch(() => {});
    this.typingTracker = new TypingTracker((user, active) =>
      this.emit("typing", { stream_id: id, user_id: user, active }, this.typingTracker.active),
    );
    this.ownTyping = new OwnTyping((active) => {
      this.host.sendEphemeral(this, active ? "typing.start" : "typing.stop", { stream_id: id });
    });
  }

  get status(): StreamStatus {
    return this._status;
  }

  /** The highest seq delivered to `event` listeners (what a resubscribe resumes from). */
  get lastSeq(): number | undefined {
    return this._lastSeq;
  }

  get atLeastOnce(): boolean {
    return this.options.delivery === "at_least_once";
  }

  /** Members of a `presence-` stream with their status. */
  get members(): Member[] {
    return [...this.membersById.values()];
  }

  /** Users typing in this stream now (others; the gateway does not echo your own). */
  get typing(): string[] {
    return this.typingTracker.active;
  }

  // ---- requests ----

  /** Stores an event; resolves with its id and seq once the gateway has it (stored exactly once). */
  publish(type: string, body: Json, meta?: { [key: string]: Json }): Promise<PublishAck> {
    return this.host.publish(this.id, type, body, meta);
  }

  /** An ephemeral event to the other subscribers; not stored. False when offline (dropped). */
  trigger(type: string, body: Json): boolean {
    return this.host.sendEphemeral(this, "event.trigger", { stream_id: this.id, type, body });
  }

  /** One page of history (`events.fetch`). */
  async fetch(params: Partial<FetchParams> = {}): Promise<HistoryPage> {
    const reply = await this.host.request("events.fetch", { stream_id: this.id, ...params });
    return { events: reply.payload.events as HeraldEvent[], has_more: !!reply.payload.has_more };
  }

  /** History as an async iterator of pages (see HistoryOptions). */
  history(options: HistoryOptions = {}): AsyncGenerator<HeraldEvent[], void, undefined> {
    return historyPages((p) => this.fetch(p), options);
  }

  /** Shows you as typing until `stopTyping()`, renewing before the gateway's 5 s expiry. */
  startTyping(): void {
    this.ownTyping.start();
  }

  stopTyping(): void {
    this.ownTyping.stop();
  }

  /** Call on every keystroke: starts typing, and stops after a few seconds without one. */
  keystroke(): void {
    this.ownTyping.keystroke();
  }

  /** Moves this user's read cursor (kept per user and stream; others get `cursor`). */
  markRead(seq: number): void {
    this.cursor = Math.max(this.cursor ?? 0, seq);
    this.host.sendDurable(this, "cursor.update", { stream_id: this.id, seq });
  }

  react(eventId: string, emoji: string): void {
    this.host.sendDurable(this, "reaction.add", { stream_id: this.id, event_id: eventId, emoji });
  }

  unreact(eventId: string, emoji: string): void {
    this.host.sendDurable(this, "reaction.remove", {
      stream_id: this.id,
      event_id: eventId,
      emoji,
    });
  }

  /** Ends the subscription for good; the stream object is done after this. */
  unsubscribe(): void {
    if (this._status === "unsubscribed") return;
    this.ownTyping.stop();
    this._status = "unsubscribed";
    this.typingTracker.clear();
    this.host.unsubscribe(this);
    this.readyReject(new HeraldError("unsubscribed", "unsubscribed before subscribed", this.id));
  }

  // ---- called by the client ----

  /** The payload of this stream's next `subscribe` (after every (re)connect). */
  subscribePayload(): Record<string, unknown> | undefined {
    if (this._status === "unsubscribed" || this._status === "failed") return undefined;
    const p: Record<string, unknown> = { stream_id: this.id };
    if (this._lastSeq !== undefined) p.last_seq = this._lastSeq;
    if (this.atLeastOnce) p.delivery = "at_least_once";
    return p;
  }

  onSubscribed(payload: Record<string, unknown>): void {
    if (this._status === "unsubscribed") return;
    const seq = Number(payload.seq ?? 0);
    const resumed = this.subscribedOnce;
    this.subscribedOnce = true;
    this._status = "subscribed";
    // Typing from before the reconnect may never be stopped; members come anew below.
    this.typingTracker.clear();
    const info: SubscribedInfo = {
      stream_id: this.id,
      seq,
      subscriber_count: Number(payload.subscriber_count ?? 0),
      resumed,
    };
    if (typeof payload.cursor === "number") {
      info.cursor = payload.cursor;
      this.cursor = Math.max(this.cursor ?? 0, payload.cursor);
    }
    if (Array.isArray(payload.members)) info.members = payload.members as Member[];
    if (payload.replay === "truncated") info.replay = "truncated";
    this.subscriberCount = info.subscriber_count;
    const last = this._lastSeq;
    if (last !== undefined && seq < last) {
      // The stream is younger than what we saw: its history is gone (memory
      // engine restart). Old ids and seqs would hide the new events.
      this.seen.clear();
      this.acked.clear();
      this._lastSeq = seq;
      this.emit("missed", { stream_id: this.id, reason: "reset", lastSeq: last, seq });
    } else if (last === undefined) {
      // Live from here: a later reconnect must resume after this seq.
      this._lastSeq = seq;
    }
    if (info.replay === "truncated") {
      this.emit("missed", { stream_id: this.id, reason: "truncated", lastSeq: last ?? 0, seq });
    }
    this.emit("subscribed", info);
    if (info.members) {
      this.membersById.clear();
      for (const m of info.members) this.membersById.set(m.user_id, m);
      this.emit("members", this.members, undefined);
    }
    this.emit("subscriberCount", this.subscriberCount);
    this.readyResolve(info);
  }

  onSubscribeError(err: HeraldError): void {
    if (FINAL_SUBSCRIBE_ERRORS.has(err.code)) {
      this._status = "failed";
      this.readyReject(err);
    }
    this.emit("error", err);
  }

  /** A refused request on this stream (ack, cursor, typing, reaction, trigger). */
  onRequestError(err: HeraldError): void {
    if (err.code === "blocked") this._status = "failed";
    this.emit("error", err);
  }

  onFrame(f: Frame): void {
    if (this._status === "unsubscribed") return;
    const p = f.payload;
    switch (f.type) {
      case "event.new":
        if (p.ephemeral === true) this.emit("trigger", p as unknown as TriggerEvent);
        else this.onEvent(p as unknown as HeraldEvent);
        return;
      case "typing":
        this.typingTracker.update(String(p.user_id), p.active === true);
        return;
      case "cursor.moved": {
        const move = p as unknown as CursorMove;
        if (move.user_id === this.userId()) this.cursor = Math.max(this.cursor ?? 0, move.seq);
        this.emit("cursor", move);
        return;
      }
      case "reaction.changed":
        this.emit("reaction", p as unknown as ReactionChange);
        return;
      case "member.joined": {
        const user = String(p.user_id);
        const had = this.membersById.get(user);
        this.membersById.set(user, { user_id: user, status: had?.status ?? "online" });
        this.emit("members", this.members, { user_id: user, action: "joined" });
        return;
      }
      case "member.left": {
        const user = String(p.user_id);
        this.membersById.delete(user);
        this.emit("members", this.members, { user_id: user, action: "left" });
        return;
      }
      case "stream.subscriber_count":
        this.subscriberCount = Number(p.count ?? 0);
        this.emit("subscriberCount", this.subscriberCount);
        return;
    }
  }

  onPresence(change: PresenceChange): void {
    const m = this.membersById.get(change.user_id);
    if (!m || m.status === change.status) return;
    m.status = change.status;
    this.emit("members", this.members, { user_id: change.user_id, action: "status" });
  }

  private onEvent(e: HeraldEvent): void {
    if (this.atLeastOnce) {
      this.onAtLeastOnce(e);
      return;
    }
    // Replays overlap live delivery only at the seam; seq order makes both checks cheap.
    if ((this._lastSeq !== undefined && e.seq <= this._lastSeq) || !this.seen.add(e.event_id)) {
      return;
    }
    this._lastSeq = e.seq;
    for (const r of this.emit("event", e)) {
      if (r instanceof Promise) r.catch((err: unknown) => this.listenerFailed(err));
    }
  }

  /**
   * Redeliveries may come below lastSeq (unacked ones), so ids alone decide.
   * An id already handled is acked again (the first ack may have been lost
   * with the connection); one still being handled is left to its handler.
   */
  private onAtLeastOnce(e: HeraldEvent): void {
    if (this.acked.has(e.event_id)) {
      this.ack(e);
      return;
    }
    if (!this.seen.add(e.event_id)) return;
    if (this._lastSeq === undefined || e.seq > this._lastSeq) this._lastSeq = e.seq;
    this.handlers = this.handlers.then(async () => {
      if (this._status === "unsubscribed") return;
      try {
        await Promise.all(this.emit("event", e));
      } catch (err) {
        // Unacked, and forgotten here, so the redelivery after a reconnect reaches the app.
        this.seen.delete(e.event_id);
        this.listenerFailed(err);
        return;
      }
      this.acked.add(e.event_id);
      this.ack(e);
    });
  }

  private ack(e: HeraldEvent): void {
    this.host.sendDurable(this, "event.ack", { stream_id: this.id, event_id: e.event_id });
  }

  private listenerFailed(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.listenerCount("error") > 0) this.emit("error", error);
  }

  /** The client is closing: stop timers. */
  dispose(): void {
    this.ownTyping.stop();
    this.typingTracker.clear();
  }
}
