import type { TokenBucket } from "../../core/rate.js";
import type { DeltaBases } from "./delta.js";
import type { TagFilter } from "./filter.js";

/** What the Pusher dialect keeps per connection beyond the core Connection. */
export interface PusherSession {
  /** Channels whose subscribe is in flight (auth, presence, replay). */
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
