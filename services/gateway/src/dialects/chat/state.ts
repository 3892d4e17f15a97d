import type { HeldFrames } from "../../core/held-frames.js";
import type { TokenBucket } from "../../core/rate.js";
import type { UserSession } from "../../core/session.js";
import type { AckLog } from "./inbox.js";

/** A Chat connection: frames are held until its token is checked and its inbox replayed. */
export interface ChatConnection {
  early: HeldFrames;
  /** Set once the inbox is live and presence has the user online. */
  ready: ChatSession | undefined;
}

/** A signed-in Chat connection: what its frames run on. */
export interface ChatSession {
  session: UserSession;
  acks: AckLog;
  typing: TokenBucket;
  /** Highest inbox seq sent on this connection: acks beyond it name nothing we sent. */
  maxDelivered: number;
  /** The token's `exp` in ms; the connection ends there. */
  expiresAtMs: number;
}
