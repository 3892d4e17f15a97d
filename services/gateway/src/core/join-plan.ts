import type { Json, PresenceVersion, StoredEvent } from "../../../../shared/src/model.js";
import type { Member } from "../../../../shared/src/presence/api.js";
import type { ChannelEncoder } from "./hub.js";

/** How presence counts one subscription. */
export interface PresenceRole {
  /** A member of the channel (presence channels, Herald member streams). */
  member: boolean;
  /** Defaults to the session's user; a Pusher presence channel names its own. */
  userId?: string | undefined;
  info?: Json | undefined;
  /**
   * Presence trouble does not fail the join: the subscription goes on
   * without counts (Foony, whose members are its own entries).
   */
  optional?: boolean;
  /**
   * False: the dialect reads neither members nor counts from presence's
   * answer, so the join does not wait for it (a round trip to the presence
   * service per subscribe, on the NATS presence). The report is still made
   * once live signals flow and queued in order with the connection's other
   * reports; a failure is logged instead of failing the join. Members always
   * wait: only their report can refuse a full channel.
   */
  answer?: boolean;
}

/** What a dialect decides for one channel join, once its own lookups are done. */
export interface JoinPlan {
  encoder: ChannelEncoder;
  /** Replay stored events with seq > afterSeq before going live. */
  afterSeq?: number | undefined;
  /** Stored events to leave out of the replay (already acknowledged). */
  skip?: ((event: StoredEvent) => boolean) | undefined;
  /**
   * How presence counts the subscription; false: presence is not told of it
   * at all (no occupancy, counts or webhooks), for a channel only the server
   * names, such as a user's own inbox.
   */
  presence: PresenceRole | false;
  /**
   * The dialect's own view of the channel's presence, taken once live signals
   * flow (Foony's entry set): resolves with the version it was taken at, which
   * then stands instead of presence's (undefined: the view could not be taken,
   * so no live change is left out).
   */
  snapshot?: (() => Promise<PresenceVersion | undefined>) | undefined;
  /** The "subscribed" reply, sent once live and before any event. */
  beforeEvents?: ((joined: Joined) => void) | undefined;
}

export interface Joined {
  /** Where the subscription went live: a position, not a count (0 does not mean empty). */
  lastSeq: number;
  truncated: boolean;
  /** The replay (`afterSeq`) has events to send. */
  replayed: boolean;
  /** Members of the channel and subscriber count as presence saw them (empty when optional presence failed). */
  members: Member[];
  subscriberCount: number;
}
