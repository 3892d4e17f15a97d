import type { HeldFrames } from "../../core/held-frames.js";
import type { TokenBucket } from "../../core/rate.js";
import type { UserSession } from "../../core/session.js";
import type { HeraldGrant } from "./token.js";

/** A Herald connection: frames are held until its token is checked. */
export interface HeraldConnection {
  early: HeldFrames;
  /** Set once authenticated. */
  ready: HeraldSession | undefined;
}

/** An authenticated Herald connection: what its commands run on. */
export interface HeraldSession {
  session: UserSession;
  grant: HeraldGrant;
  typing: Map<string, NodeJS.Timeout>;
  /** Streams subscribed with `delivery: at_least_once`. */
  atLeastOnce: Set<string>;
  triggers: TokenBucket;
  /**
   * Whether the user is blocked in a stream (HTTP API): looked up on the
   * stream's first use (a promise while the lookup runs), then kept current
   * by `blocked` user signals.
   */
  blocked: Map<string, boolean | Promise<boolean>>;
}
