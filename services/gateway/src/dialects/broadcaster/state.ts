import type { Session } from "../../core/session.js";
import type { BroadcasterGrant } from "./token.js";

/** One subscription: its own id and message numbering. */
export interface Subscription {
  id: string;
  /** Messages this subscription delivered; the next one carries seq + 1. */
  seq: number;
}

/** A Broadcaster connection: bound to its app at open (the URL names it), signed in by `auth`. */
export interface BroadcasterConnection {
  session: Session;
  grant: BroadcasterGrant | undefined;
  /** The last grant ran out; requests say so until a fresh `auth`. */
  expired: boolean;
  /** An `auth` is being verified; frames wait in `waiting` so they see its outcome. */
  authing: boolean;
  waiting: string[];
  subscriptions: Map<string, Subscription>;
  subscriptionCounter: number;
  cancelExpiry: (() => void) | undefined;
  /** Presence was told the user is online (on the first `auth`). */
  presenceOpened: boolean;
}

export function newConnection(session: Session): BroadcasterConnection {
  return {
    session,
    grant: undefined,
    expired: false,
    authing: false,
    waiting: [],
    subscriptions: new Map(),
    subscriptionCounter: 0,
    cancelExpiry: undefined,
    presenceOpened: false,
  };
}
