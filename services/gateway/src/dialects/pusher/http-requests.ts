import { channelKind } from "../../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import type { Json } from "../../../../../shared/src/model.js";
import { checkChannel, type ServerApi } from "../../api/server-api.js";
import { dataFromPusher, isServerToUser, SERVER_TO_USER_PREFIX } from "./codec.js";
import { PusherHttpError } from "./codes.js";
import {
  type Attr,
  attrs,
  type EventSpec,
  eventSpec,
  idempotencyKey,
  object,
} from "./http-parse.js";

export const MAX_EVENT_CHANNELS = 100;
export const MAX_BATCH = 10;

export interface ApiRequest {
  app: AppConfig;
  /** Route parameters after the app id, URL-decoded. */
  params: string[];
  query: URLSearchParams;
  body: unknown;
  idempotencyKey: string | undefined;
}

/**
 * The Pusher HTTP API's requests mapped onto the server API: each checks
 * what only Pusher asks of a request, calls the server API, and returns the
 * JSON body of a 200 answer or throws PusherHttpError (or the API's ApiError).
 */
export class PusherHttpApi {
  constructor(
    private readonly api: ServerApi,
    /** Stored with each event it publishes (the console publishes through it too). */
    private readonly via = "pusher http",
  ) {}

  async events(r: ApiRequest): Promise<Json> {
    const b = object(r.body, "body");
    const list = b.channels ?? (b.channel === undefined ? undefined : [b.channel]);
    const spec = eventSpec(r.app, b, list, MAX_EVENT_CHANNELS);
    const key = idempotencyKey(r.idempotencyKey, b);
    await Promise.all(
      spec.channels.map((ch) => this.publish(r.app, spec, ch, key && `${key}\u0000${ch}`)),
    );
    if (spec.info.length === 0) return {};
    const channels: Record<string, Json> = {};
    for (const ch of spec.channels) {
      if (!isServerToUser(ch)) channels[ch] = await this.attributes(r.app, ch, spec.info);
    }
    return { channels };
  }

  async batchEvents(r: ApiRequest): Promise<Json> {
    const b = object(r.body, "body");
    if (!Array.isArray(b.batch) || b.batch.length === 0)
      throw new PusherHttpError(400, "batch must be a non-empty array");
    if (b.batch.length > MAX_BATCH)
      throw new PusherHttpError(400, `Batch too large: at most ${MAX_BATCH} events`);
    // Every item is checked before any is published: a bad batch publishes nothing.
    const specs = b.batch.map((item: unknown, i) => {
      const o = object(item, `batch[${i}]`);
      if (o.channels !== undefined)
        throw new PusherHttpError(400, `batch[${i}]: use channel, not channels`);
      return eventSpec(r.app, o, o.channel === undefined ? undefined : [o.channel], 1);
    });
    const key = idempotencyKey(r.idempotencyKey, b);
    await Promise.all(
      specs.map((spec, i) =>
        this.publish(r.app, spec, spec.channels[0], key && `${key}\u0000${i}`),
      ),
    );
    if (specs.every((s) => s.info.length === 0)) return {};
    const batch: Json[] = [];
    for (const spec of specs) {
      const ch = spec.channels[0];
      batch.push(isServerToUser(ch) ? {} : await this.attributes(r.app, ch, spec.info));
    }
    return { batch };
  }

  async channels(r: ApiRequest): Promise<Json> {
    const prefix = r.query.get("filter_by_prefix") ?? "";
    const info = attrs(r.query.get("info"));
    if (info.includes("user_count") && !prefix.startsWith("presence-"))
      throw new PusherHttpError(400, "user_count is only available for presence- channels");
    const channels: Record<string, Json> = {};
    for (const c of await this.api.channels(r.app, prefix)) {
      const out: Record<string, Json> = {};
      if (info.includes("user_count")) out.user_count = c.userCount ?? 0;
      if (info.includes("subscription_count")) out.subscription_count = c.subscriptionCount;
      channels[c.channel] = out;
    }
    return { channels };
  }

  async channel(r: ApiRequest): Promise<Json> {
    const name = r.params[0];
    checkChannel(name);
    const info = attrs(r.query.get("info"));
    if (info.includes("user_count") && !channelKind(name).presence)
      throw new PusherHttpError(400, "user_count is only available for presence- channels");
    const state = await this.api.channelInfo(r.app, name, {
      userCount: info.includes("user_count"),
    });
    return { occupied: state.occupied, ...encodeAttributes(state, info) };
  }

  async users(r: ApiRequest): Promise<Json> {
    const members = await this.api.users(r.app, r.params[0] ?? "");
    return { users: members.map((m) => ({ id: m.userId })) };
  }

  async block(r: ApiRequest, blocked: boolean): Promise<Json> {
    const channel = r.params[0] ?? "";
    // The channel is judged before the body, as it always was.
    checkChannel(channel);
    const userId = blocked ? object(r.body, "body").user_id : r.params[1];
    await this.api.setBlocked(r.app, channel, userId, blocked);
    return {};
  }

  async terminate(r: ApiRequest): Promise<Json> {
    this.api.terminate(r.app, r.params[0] ?? "");
    return {};
  }

  private async publish(
    app: AppConfig,
    spec: EventSpec,
    channel: string,
    key: string | undefined,
  ): Promise<void> {
    const data =
      typeof spec.data === "string"
        ? dataFromPusher(spec.data, channelKind(channel).encrypted)
        : spec.data;
    if (isServerToUser(channel)) {
      const userId = channel.slice(SERVER_TO_USER_PREFIX.length);
      this.api.sendToUser(app, userId, { name: spec.name, data });
      return;
    }
    await this.api.publish(
      app,
      channel,
      { name: spec.name, data, tags: spec.tags, excludeConnectionId: spec.socketId },
      { dialect: "pusher", idempotencyKey: key, via: this.via },
    );
  }

  private async attributes(app: AppConfig, channel: string, info: Attr[]): Promise<Json> {
    const state = await this.api.channelInfo(app, channel, {
      userCount: info.includes("user_count"),
    });
    return encodeAttributes(state, info);
  }
}

/** `user_count` only where the channel has one (presence), `subscription_count` where asked. */
function encodeAttributes(
  state: { subscriptionCount: number; userCount?: number | undefined },
  info: Attr[],
): Record<string, Json> {
  const out: Record<string, Json> = {};
  if (state.userCount !== undefined) out.user_count = state.userCount;
  if (info.includes("subscription_count")) out.subscription_count = state.subscriptionCount;
  return out;
}
