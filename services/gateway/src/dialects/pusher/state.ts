import type { TokenBucket } from "../../core/rate.js";
import type { Session } from "../../core/session.js";
import type { DeltaBases } from "./delta.js";
import type { TagFilter } from "./filter.js";

/**
 * A Pusher connection: bound to its app at open (the URL names the key), so
 * its core session is there from the first frame.
 */
export interface PusherConnection {
  session: Session;
  /**
   * Channels whose subscribe is in flight (auth, presence, replay) until
   * `pusher_internal:subscription_succeeded`: a repeated subscribe is
   * ignored and client events are refused meanwhile, as Pusher does.
   */
  pending: Set<string>;
  /** The `user_id` from each presence channel's channel_data. */
  presenceIds: Map<string, string>;
  /** Rate of client-* events (app.limits.clientEventRate per second). */
  clientEvents: TokenBucket;
  /** Set once `pusher:signin` succeeded. */
  user: { id: string; userData: string } | undefined;
  signingIn: boolean;
  /** Sockudo tag filters of subscribed channels that have one. */
  filters: Map<string, TagFilter>;
  /** Set once the client sent `pusher:enable_delta_compression`. */
  deltas: DeltaBases | undefined;
}
