import type { Json, PresenceVersion, UserStatus } from "../model.js";

/** A member of a presence-tracked channel (user level). */
export interface Member {
  userId: string;
  info?: Json | undefined;
  status: UserStatus;
}

export interface ChannelSubscription {
  appId: string;
  channel: string;
  connectionId: string;
  /** Absent for anonymous connections (they count, but are never members). */
  userId?: string | undefined;
  info?: Json | undefined;
  /** Track membership (presence- channels, Foony `pres enter`). */
  member: boolean;
  /** Member limit of the app; joining a full channel is refused. */
  maxMembers: number;
}

export type SubscribeOutcome =
  | {
      ok: true;
      members: Member[];
      subscriberCount: number;
      /**
       * The version `members` was taken at (absent from replicas older than
       * versions): membership signals up to it are already in `members`.
       */
      version?: PresenceVersion | undefined;
    }
  | { ok: false; reason: "full" };

/** Negative, zero or positive as `a` is older than, the same as or newer than `b`. */
export function compareVersions(a: PresenceVersion, b: PresenceVersion): number {
  return a[0] - b[0] || a[1] - b[1];
}

/**
 * One connection's presence on a channel (Foony `pres`): connection level,
 * so one client entered on two connections is two entries.
 */
export interface PresenceEntry {
  clientId: string;
  connectionId: string;
  data?: Json | undefined;
}

/**
 * A connection entering, updating or leaving a channel's presence set. It
 * needs no subscription to the channel. `enter` and `update` both set the
 * entry: the first announces `enter`, a change of data `update`, and one
 * that changes nothing is not announced (so a retried report is harmless).
 */
export interface PresenceChange extends PresenceEntry {
  appId: string;
  channel: string;
  action: "enter" | "update" | "leave";
}

export interface PresenceSet {
  entries: PresenceEntry[];
  /** Absent from replicas older than versions: `presence` signals up to it are in `entries`. */
  version?: PresenceVersion | undefined;
}

export interface ChannelInfo {
  channel: string;
  subscriptionCount: number;
  /** Distinct member users (presence-tracked channels only). */
  userCount?: number | undefined;
}

/**
 * What a gateway asks of the presence service. Dialect-neutral: Herald,
 * Pusher, Foony and Chat all build on it. Membership events come back as
 * engine signals on the channel (`member`, `presence`, `subscriber_count`,
 * `status`) and on users' subjects (`watch`), so dialects see them through
 * the hub.
 *
 * Membership is user level: a user is a member of a channel while any of
 * its connections (on any gateway) is subscribed as a member. Presence
 * entries (`setPresence`) are connection level and independent of it.
 */
export interface PresenceApi {
  /**
   * How long the oldest report this gateway sent is waiting for its owner,
   * in seconds (the presence lag metric); absent: in-process, no lag.
   */
  reportLagSeconds?(): number;
  /** Registers a subscription; for members, joins (emitting `member joined` once per user). */
  subscribe(sub: ChannelSubscription): Promise<SubscribeOutcome>;
  /** Removes a subscription (emits `member left` when the user's last connection goes). */
  unsubscribe(appId: string, channel: string, connectionId: string): Promise<void>;
  /** A connection signed in as a user opened: online status and its watchlist. */
  connectionOpened(
    appId: string,
    connectionId: string,
    userId: string,
    watchlist: readonly string[],
  ): Promise<void>;
  /**
   * Sets or removes a connection's presence entry, announcing `presence`
   * enter/update/leave on the channel. Entries go with their connection:
   * `connectionClosed` and the loss of its gateway announce the leaves.
   */
  setPresence(change: PresenceChange): Promise<void>;
  /** The channel's presence entries, every gateway's. */
  present(appId: string, channel: string): Promise<PresenceEntry[]>;
  /** The same, with the version they were taken at (see `SubscribeOutcome.version`). */
  presenceSet(appId: string, channel: string): Promise<PresenceSet>;
  /** A connection closed: drops all its subscriptions, presence entries and online state. */
  connectionClosed(appId: string, connectionId: string): Promise<void>;
  /** Manual status; `offline` hides a connected user. */
  setStatus(appId: string, userId: string, status: UserStatus): Promise<void>;
  /** The user's visible status (offline if not connected). */
  status(appId: string, userId: string): Promise<UserStatus>;
  members(appId: string, channel: string): Promise<Member[]>;
  subscriberCount(appId: string, channel: string): Promise<number>;
  /** Occupied channels, optionally filtered by prefix (Pusher GET /channels). */
  channels(appId: string, prefix?: string): Promise<ChannelInfo[]>;
  close(): Promise<void>;
}

/**
 * No presence owner answered within the retry window: a transient failure
 * (a replica failing over), which a client may retry.
 */
export class PresenceUnavailableError extends Error {
  override name = "PresenceUnavailableError";
}
