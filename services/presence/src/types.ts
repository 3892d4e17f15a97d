/** What the presence state machine stores and returns (see `core.ts`). */
import type { Signal } from "../../../shared/src/model.js";
import type { ChannelSubscription } from "../../../shared/src/presence/api.js";
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

/** A join as the core sees it: exactly what a gateway asked for. */
export type JoinRequest = ChannelSubscription;

/** Connections and statuses changed since the last `take` (what the service persists). */
export class DirtyKeys {
  private readonly conns = new Map<string, { appId: string; connectionId: string }>();
  private readonly statuses = new Map<string, { appId: string; userId: string }>();

  /** `on`: false when nothing persists (in-process mode), so nothing accumulates. */
  constructor(private readonly on: boolean) {}

  conn(appId: string, connectionId: string): void {
    if (this.on) this.conns.set(`${appId}\0${connectionId}`, { appId, connectionId });
  }

  status(appId: string, userId: string): void {
    if (this.on) this.statuses.set(`${appId}\0${userId}`, { appId, userId });
  }

  take() {
    const dirty = { connections: [...this.conns.values()], statuses: [...this.statuses.values()] };
    this.conns.clear();
    this.statuses.clear();
    return dirty;
  }
}
