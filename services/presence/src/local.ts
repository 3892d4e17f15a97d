import type { Config } from "../../../shared/src/config/load.js";
import type { UserStatus } from "../../../shared/src/model.js";
import type {
  ChannelInfo,
  ChannelSubscription,
  Member,
  PresenceApi,
  PresenceChange,
  PresenceEntry,
  PresenceSet,
  SubscribeOutcome,
} from "../../../shared/src/presence/api.js";
import { PresenceCore } from "./core.js";
import { EffectEmitter, type EmitterOptions, type SignalSink } from "./emitter.js";

export interface LocalPresenceOptions extends EmitterOptions {
  engine: SignalSink;
  /**
   * Accepted so the composition root can build either presence mode from the
   * same options; nothing in it applies in-process (no heartbeats, no leases).
   */
  config?: Config | undefined;
}

/**
 * Presence for a single process (`npm start` on the memory engine): the same
 * state machine as the NATS service, with no persistence and no gateways to
 * watch. Every operation completes synchronously; the promises only satisfy
 * the `PresenceApi` shape shared with `NatsPresenceClient`.
 */
export class LocalPresence implements PresenceApi {
  private static readonly GATEWAY = "local";
  private readonly core = new PresenceCore(false);
  private readonly emitter: EffectEmitter;

  constructor(options: LocalPresenceOptions) {
    this.emitter = new EffectEmitter(options.engine, options);
  }

  async subscribe(sub: ChannelSubscription): Promise<SubscribeOutcome> {
    const { outcome, effects } = this.core.join(LocalPresence.GATEWAY, sub);
    this.emitter.emit(effects);
    return outcome;
  }

  async unsubscribe(appId: string, channel: string, connectionId: string): Promise<void> {
    this.emitter.emit(this.core.leave(appId, channel, connectionId));
  }

  async connectionOpened(
    appId: string,
    connectionId: string,
    userId: string,
    watchlist: readonly string[],
  ): Promise<void> {
    this.emitter.emit(
      this.core.open(LocalPresence.GATEWAY, appId, connectionId, userId, watchlist),
    );
  }

  async connectionClosed(appId: string, connectionId: string): Promise<void> {
    this.emitter.emit(this.core.close(appId, connectionId));
  }

  async setPresence(change: PresenceChange): Promise<void> {
    this.emitter.emit(this.core.setPresence(LocalPresence.GATEWAY, change));
  }

  async present(appId: string, channel: string): Promise<PresenceEntry[]> {
    return this.core.present(appId, channel);
  }

  async presenceSet(appId: string, channel: string): Promise<PresenceSet> {
    return { entries: this.core.present(appId, channel), version: this.core.version() };
  }

  async setStatus(appId: string, userId: string, status: UserStatus): Promise<void> {
    this.emitter.emit(this.core.setStatus(appId, userId, status));
  }

  async status(appId: string, userId: string): Promise<UserStatus> {
    return this.core.status(appId, userId);
  }

  async members(appId: string, channel: string): Promise<Member[]> {
    return this.core.members(appId, channel);
  }

  async subscriberCount(appId: string, channel: string): Promise<number> {
    return this.core.subscriberCount(appId, channel);
  }

  async channels(appId: string, prefix?: string): Promise<ChannelInfo[]> {
    return this.core.channels(appId, prefix);
  }

  async close(): Promise<void> {
    this.emitter.close();
  }
}
