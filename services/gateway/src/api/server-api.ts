import {
  channelKind,
  isValidChannel,
  isValidUserId,
  USER_ID_RULE,
} from "../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../shared/src/config/apps.js";
import type { Engine, PublishResult } from "../../../../shared/src/engine/engine.js";
import type { EventInput, Json } from "../../../../shared/src/model.js";
import type { ChannelInfo, Member, PresenceApi } from "../../../../shared/src/presence/api.js";
import type { Blocks } from "../core/blocks.js";
import type { Publish, PublishFrom } from "../core/publish.js";
import { ApiError } from "./errors.js";

/** Longest user id `terminate` takes (any characters: it only addresses a signal). */
const MAX_TERMINATE_USER_ID = 200;

/** A channel's occupancy, and its member count when asked for on a presence channel. */
export interface ChannelState {
  occupied: boolean;
  subscriptionCount: number;
  /** Distinct member users; only for presence channels, only when asked for. */
  userCount?: number | undefined;
}

/**
 * The product's own server API: what an application's backend asks of the
 * cluster, whichever HTTP dialect it speaks (the Pusher HTTP API,
 * Broadcaster REST, the console). Each route parses and signs-checks its
 * own requests, calls these, and encodes the answers in its own format;
 * the checks here (channel names, user ids) and their messages are shared.
 */
export class ServerApi {
  constructor(
    private readonly ctx: {
      engine: Engine;
      publish: Publish;
      presence: PresenceApi;
      blocks: Blocks;
    },
  ) {}

  /** Stores an event on a channel through the one publish path (metrics by `from.dialect`). */
  publish(
    app: AppConfig,
    channel: string,
    event: EventInput,
    from: PublishFrom,
  ): Promise<PublishResult> {
    return this.ctx.publish(app.id, channel, event, from);
  }

  /** Delivers an event to every connection signed in as the user, live only (nothing stored). */
  sendToUser(app: AppConfig, userId: string, event: { name: string; data: Json }): void {
    this.ctx.engine.signalUser(app.id, userId, { kind: "direct", ...event });
  }

  /** Occupied channels whose name starts with `prefix`. */
  async channels(app: AppConfig, prefix: string): Promise<ChannelInfo[]> {
    const list = await this.ctx.presence.channels(app.id, prefix);
    return list.filter((c) => c.subscriptionCount > 0);
  }

  async channelInfo(
    app: AppConfig,
    channel: string,
    want: { userCount: boolean },
  ): Promise<ChannelState> {
    checkChannel(channel);
    const members =
      want.userCount && channelKind(channel).presence
        ? this.ctx.presence.members(app.id, channel)
        : undefined;
    const [count, list] = await Promise.all([
      this.ctx.presence.subscriberCount(app.id, channel),
      members,
    ]);
    return { occupied: count > 0, subscriptionCount: count, userCount: list?.length };
  }

  /** Members of a presence channel. */
  async users(app: AppConfig, channel: string): Promise<Member[]> {
    checkChannel(channel);
    if (!channelKind(channel).presence)
      throw new ApiError(400, "Users are only available for presence- channels");
    return this.ctx.presence.members(app.id, channel);
  }

  /** Closes every connection of the user, on every gateway and in every dialect. */
  terminate(app: AppConfig, userId: string): void {
    if (userId === "" || userId.length > MAX_TERMINATE_USER_ID)
      throw new ApiError(400, "Invalid user id");
    this.ctx.engine.signalUser(app.id, userId, { kind: "terminate" });
  }

  /**
   * Keeps a user out of one channel (or lets them back in): stored, so it
   * holds for connections made later, and signalled to the ones open now.
   */
  async setBlocked(
    app: AppConfig,
    channel: string,
    userId: unknown,
    blocked: boolean,
  ): Promise<void> {
    checkChannel(channel);
    if (!isValidUserId(userId)) throw new ApiError(400, `user_id must be ${USER_ID_RULE}`);
    await this.ctx.blocks.set(app.id, channel, userId, blocked);
  }
}

/** Throws the server API's answer to a channel name no dialect accepts. */
export function checkChannel(channel: unknown): asserts channel is string {
  if (!isValidChannel(channel)) throw new ApiError(400, "Invalid channel name");
}
