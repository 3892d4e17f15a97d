/** What the presence state machine stores and returns (see `core.ts`). */
import type { Json, Signal } from "../../../shared/src/engine/engine.js";
import type { ConnectionSnapshot } from "../../../shared/src/presence/messages.js";

export type PresenceEffect =
  | { to: "channel"; appId: string; channel: string; signal: Signal }
  | { to: "user"; appId: string; userId: string; signal: Signal }
  /** The channel's subscriber count changed (the caller throttles). */
  | { to: "count"; appId: string; channel: string; count: number }
  /** First subscription of the channel (anywhere), or its last one gone: Pusher's occupied/vacated webhooks. */
  | { to: "occupancy"; appId: string; channel: string; occupied: boolean };

/** A connection as the core (and the service's KV) stores it. */
export interface ConnectionRecord extends ConnectionSnapshot {
  gatewayId: string;
}

export interface JoinRequest {
  appId: string;
  channel: string;
  connectionId: string;
  userId?: string | undefined;
  info?: Json | undefined;
  member: boolean;
  maxMembers: number;
}
