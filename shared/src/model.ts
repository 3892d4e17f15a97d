/**
 * The shared vocabulary: what an event, a signal, a delivery and a user's
 * status are, for every layer (engine, presence, core, dialects). It names
 * no protocol: each dialect maps its own frames onto these shapes, and the
 * engine (`engine/engine.ts`) stores and fans them out without knowing which.
 */

/** JSON-compatible value. Event payloads are stored and delivered as JSON. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What a publisher hands to the engine. */
export interface EventInput {
  /** Event name (Herald `type`, Pusher `event`, Foony `name`, ...). */
  name: string;
  data: Json;
  /** Opaque application metadata (Herald `meta`). */
  meta?: { [key: string]: Json } | undefined;
  /** Publishing user; absent for events published through an HTTP API. */
  userId?: string | undefined;
  /**
   * Sockudo tags: string labels a subscriber's filter is matched against.
   * Stored with the event and returned by history and replay.
   */
  tags?: { [key: string]: string } | undefined;
  /**
   * Connection that must not receive the live copy (Pusher `socket_id`
   * exclusion). Replay and history still return the event to everyone.
   */
  excludeConnectionId?: string | undefined;
  /**
   * How the event came in (`herald`, `pusher http`, `console`, ...), stored
   * for operators: the console shows it beside the sender. No dialect shows
   * it to clients.
   */
  via?: string | undefined;
}

/** An event as stored: what history, replay and live delivery return. */
export interface StoredEvent extends EventInput {
  channel: string;
  /**
   * Sequence number: unique within the app, strictly increasing within a
   * channel, not contiguous (other channels' events take numbers in between).
   */
  seq: number;
  /** Unique per app; derived from `seq` (see `eventIdOf`). */
  id: string;
  /** Milliseconds since the epoch, assigned by the engine when stored. */
  time: number;
}

/** Event ids encode the app-unique seq so an id can be resolved without an index. */
export function eventIdOf(seq: number): string {
  return `evt_${seq}`;
}

/**
 * A stored event of `input`'s fields (absent ones left absent) and the
 * engine's own. Hot paths build events and other per-message objects as
 * literals, never as `{ ...x, key }`: on Node 20 (V8 11.3) a literal that
 * starts with a spread and has keys after it gets a hidden class of its own
 * every time (~8 µs each in a loop, and every later read of it megamorphic).
 * A field added to EventInput is added here and in js-codec.ts's decode
 * (`eventInput` below refuses to compile without it).
 */
export function storedEvent(
  input: EventInput,
  channel: string,
  seq: number,
  time: number,
): StoredEvent {
  const event: StoredEvent = {
    channel,
    seq,
    id: eventIdOf(seq),
    time,
    name: input.name,
    data: input.data,
  };
  if (input.meta !== undefined) event.meta = input.meta;
  if (input.userId !== undefined) event.userId = input.userId;
  if (input.tags !== undefined) event.tags = input.tags;
  if (input.excludeConnectionId !== undefined)
    event.excludeConnectionId = input.excludeConnectionId;
  if (input.via !== undefined) event.via = input.via;
  return event;
}

/**
 * `event`'s fields with `via` set, as one literal (see `storedEvent`). Its
 * type lists every field, so one added to EventInput is a compile error here.
 */
export function eventInput(
  event: EventInput,
  via: string | undefined,
): { [K in keyof Required<EventInput>]: EventInput[K] } {
  return {
    name: event.name,
    data: event.data,
    meta: event.meta,
    userId: event.userId,
    tags: event.tags,
    excludeConnectionId: event.excludeConnectionId,
    via,
  };
}

/** The seq an event id stands for, or null if the id is not one of ours. */
export function seqOfEventId(id: string): number | null {
  const m = /^evt_([1-9][0-9]{0,15})$/.exec(id);
  return m ? Number(m[1]) : null;
}

/**
 * Where a membership change stands among the changes the presence service
 * announces: the owner's epoch (larger after every takeover), then a count
 * within it, compared in that order. A member list taken at version `v`
 * already reflects every change up to `v`, so a subscriber that got that
 * list skips such changes when they arrive after it.
 */
export type PresenceVersion = readonly [epoch: number, n: number];

/**
 * Fields any signal may carry. Fan-out (the gateway hub) reads these and
 * never the kind, so a new kind needs no change there.
 */
interface SignalRouting {
  /**
   * Connection that must not receive the live copy: the one that caused the
   * signal and knows already (as `EventInput.excludeConnectionId`).
   */
  excludeConnectionId?: string | undefined;
  /**
   * Set by the presence service on membership changes: a member or entry
   * list at this version or later already has it, and a change not newer
   * than one already delivered on the channel is dropped.
   */
  version?: PresenceVersion | undefined;
}

/**
 * A transient signal: fanned out to live subscribers of a channel (or a
 * user), never stored, no sequence number, at-most-once.
 */
export type Signal = SignalRouting &
  /** A named event sent to live subscribers only, never stored (Herald event.trigger, Pusher client-*). */
  (
    | {
        kind: "transient";
        name: string;
        data: Json;
        userId?: string | undefined;
        excludeConnectionId: string;
      }
    | { kind: "typing"; userId: string; active: boolean; excludeConnectionId: string }
    | { kind: "cursor"; userId: string; seq: number; excludeConnectionId: string }
    | {
        kind: "reaction";
        userId: string;
        eventId: string;
        emoji: string;
        action: "add" | "remove";
        count: number;
      }
    /**
     * Membership change on a presence-tracked channel (user level). Excludes
     * the connection whose join caused it: it learns the members from its own reply.
     */
    | {
        kind: "member";
        action: "joined" | "left";
        userId: string;
        info?: Json | undefined;
      }
    /**
     * A presence entry changed: one connection's client id and data on a
     * channel, several per user (Foony `pres`). Every subscriber gets it,
     * the entry's own connection included.
     */
    | {
        kind: "entry";
        action: "enter" | "leave" | "update";
        clientId: string;
        /** The connection the entry belongs to. */
        connectionId: string;
        data?: Json | undefined;
      }
    | { kind: "subscriber_count"; count: number }
    /** A user's visible status changed (manual status or online/offline). */
    | { kind: "status"; userId: string; status: UserStatus }
    /** Sent on a user's own subject: one of its watched users came or went. */
    | { kind: "watch"; userId: string; online: boolean }
    /** Sent on a user's own subject: close every connection of that user. */
    | { kind: "terminate" }
    /** Sent on a user's own subject: the user was blocked in (or unblocked from) a channel. */
    | { kind: "blocked"; channel: string; blocked: boolean }
    /** Sent on a user's own subject: a named event addressed to that user (Pusher server-to-user). */
    | { kind: "direct"; name: string; data: Json }
  );

export type UserStatus = "online" | "away" | "dnd" | "offline";

/** A live delivery on a channel: a stored event, or a signal. */
export type Delivery = { type: "event"; event: StoredEvent } | { type: "signal"; signal: Signal };

/** The KV buckets Tidings uses; each engine maps them to its storage. */
export type KvBucket = "cursors" | "acks" | "reactions" | "presence" | "chat" | "blocks";
