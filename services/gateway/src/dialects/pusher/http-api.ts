import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import {
  channelKind,
  isValidChannel,
  isValidUserId,
  USER_ID_RULE,
} from "../../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import { EngineUnavailableError, type Json } from "../../../../../shared/src/engine/engine.js";
import { jsonTooDeep, MAX_JSON_DEPTH } from "../../../../../shared/src/json-depth.js";
import type { GatewayContext } from "../../core/dialect.js";
import { BodyTooLargeError, readBody } from "../../http/body.js";
import { dataFromPusher, EVENT_NAME_MAX, isServerToUser, SERVER_TO_USER_PREFIX } from "./codec.js";
import { PusherHttpError, PusherHttpStatus } from "./codes.js";
import { parseTags, type Tags } from "./filter.js";
import { verifyEnvelope, verifyRequest } from "./http-sign.js";

export const MAX_EVENT_CHANNELS = 100;
export const MAX_BATCH = 10;
const SOCKET_ID = /^[0-9]{1,12}\.[0-9]{1,12}$/;
type Attr = "user_count" | "subscription_count";

export interface ApiRequest {
  app: AppConfig;
  /** Route parameters after the app id, URL-decoded. */
  params: string[];
  query: URLSearchParams;
  body: unknown;
  idempotencyKey: string | undefined;
}

type Handler = (r: ApiRequest) => Promise<Json>;

/** The Pusher HTTP API at `/apps/{app_id}/...`, signed as Pusher signs it. */
export function registerPusherHttp(uws: TemplatedApp, ctx: GatewayContext): void {
  const api = new PusherHttpApi(ctx);
  const route = (method: "get" | "post" | "del", pattern: string, handler: Handler) => {
    const paramCount = pattern.split("/").filter((p) => p.startsWith(":")).length;
    uws[method](pattern, (res, req) => {
      // uWS invalidates `req` at the first await: copy everything out now.
      const path = req.getUrl();
      const query = new URLSearchParams(req.getQuery() ?? "");
      const raw = Array.from({ length: paramCount }, (_, i) => req.getParameter(i) ?? "");
      const idempotencyKey = req.getHeader("idempotency-key") || undefined;
      const state = { aborted: false };
      res.onAborted(() => {
        state.aborted = true;
      });
      serve(ctx, res, state, method, path, query, raw, idempotencyKey, handler);
    });
  };
  route("post", "/apps/:app_id/events", (r) => api.events(r));
  route("post", "/apps/:app_id/batch_events", (r) => api.batchEvents(r));
  route("get", "/apps/:app_id/channels", (r) => api.channels(r));
  route("get", "/apps/:app_id/channels/:channel_name", (r) => api.channel(r));
  route("get", "/apps/:app_id/channels/:channel_name/users", (r) => api.users(r));
  route("post", "/apps/:app_id/users/:user_id/terminate_connections", (r) => api.terminate(r));
  // Tidings extension (Herald's `blocked`): keep a user out of one channel.
  route("post", "/apps/:app_id/channels/:channel_name/blocked_users", (r) => api.block(r, true));
  route("del", "/apps/:app_id/channels/:channel_name/blocked_users/:user_id", (r) =>
    api.block(r, false),
  );
}

function serve(
  ctx: GatewayContext,
  res: HttpResponse,
  state: { aborted: boolean },
  method: "get" | "post" | "del",
  path: string,
  query: URLSearchParams,
  raw: string[],
  idempotencyKey: string | undefined,
  handler: Handler,
): void {
  const respond = (status: string, type: string, text: string) => {
    if (state.aborted) return;
    res.cork(() => {
      res.writeStatus(status).writeHeader("content-type", type).end(text);
    });
  };
  const run = async (): Promise<Json | undefined> => {
    const app = ctx.apps.byId(decodeParam(raw[0] ?? ""));
    if (!app) throw new PusherHttpError(404, "Unknown app");
    let body: Buffer = Buffer.alloc(0);
    if (method === "post") {
      verifyEnvelope(app, query, Math.floor(Date.now() / 1000));
      const read = await readBody(res, bodyLimit(app));
      if (read === null) {
        state.aborted = true;
        return undefined;
      }
      body = read;
      // readBody's abort handler is spent; keep tracking aborts for the reply.
      res.onAborted(() => {
        state.aborted = true;
      });
    }
    const verb = method === "del" ? "DELETE" : method.toUpperCase();
    verifyRequest(app, verb, path, query, body, Math.floor(Date.now() / 1000));
    let parsed: unknown;
    if (body.byteLength > 0) {
      const text = body.toString("utf8");
      if (jsonTooDeep(text))
        throw new PusherHttpError(400, `Request body nested deeper than ${MAX_JSON_DEPTH}`);
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new PusherHttpError(400, "Request body is not valid JSON");
      }
    }
    return handler({
      app,
      params: raw.slice(1).map(decodeParam),
      query,
      body: parsed,
      idempotencyKey,
    });
  };
  run().then(
    (json) => {
      if (json !== undefined) respond("200 OK", "application/json", JSON.stringify(json));
    },
    (err: unknown) => {
      let status: keyof typeof PusherHttpStatus = 400;
      let text: string;
      if (err instanceof PusherHttpError) {
        status = err.status;
        text = err.message;
      } else if (err instanceof BodyTooLargeError) {
        status = 413;
        text = "Request body too large";
      } else if (err instanceof EngineUnavailableError) {
        ctx.metrics.errors.inc({ dialect: "pusher", code: "http_503" });
        return respond("503 Service Unavailable", "text/plain", "Storage unavailable; retry");
      } else {
        ctx.log.error({ err, path }, "pusher http api failed");
        return respond("500 Internal Server Error", "text/plain", "Internal error");
      }
      ctx.metrics.errors.inc({ dialect: "pusher", code: `http_${status}` });
      respond(PusherHttpStatus[status], "text/plain", `${text}\n`);
    },
  );
}

/** A batch holds up to 10 events of up to maxFrameBytes of data each, plus JSON escaping. */
function bodyLimit(app: AppConfig): number {
  return (MAX_BATCH + 1) * app.limits.maxFrameBytes * 2;
}

function decodeParam(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new PusherHttpError(400, "Malformed URL encoding");
  }
}

interface EventSpec {
  name: string;
  channels: string[];
  data: Json;
  socketId: string | undefined;
  info: Attr[];
  /** Sockudo tags, matched against subscribers' filters. */
  tags: Tags | undefined;
}

/** Request handlers; each returns the JSON body of a 200 answer or throws PusherHttpError. */
export class PusherHttpApi {
  constructor(private readonly ctx: GatewayContext) {}

  async events(r: ApiRequest): Promise<Json> {
    const b = object(r.body, "body");
    const list = b.channels ?? (b.channel === undefined ? undefined : [b.channel]);
    const spec = this.eventSpec(r.app, b, list, MAX_EVENT_CHANNELS);
    const key = idempotencyKey(r, b);
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
      return this.eventSpec(r.app, o, o.channel === undefined ? undefined : [o.channel], 1);
    });
    const key = idempotencyKey(r, b);
    await Promise.all(
      specs.map((spec, i) =>
        this.publish(r.app, spec, spec.channels[0]!, key && `${key}\u0000${i}`),
      ),
    );
    if (specs.every((s) => s.info.length === 0)) return {};
    const batch: Json[] = [];
    for (const spec of specs) {
      const ch = spec.channels[0]!;
      batch.push(isServerToUser(ch) ? {} : await this.attributes(r.app, ch, spec.info));
    }
    return { batch };
  }

  async channels(r: ApiRequest): Promise<Json> {
    const prefix = r.query.get("filter_by_prefix") ?? "";
    const info = attrs(r.query.get("info"));
    if (info.includes("user_count") && !prefix.startsWith("presence-"))
      throw new PusherHttpError(400, "user_count is only available for presence- channels");
    const list = await this.ctx.presence.channels(r.app.id, prefix);
    const channels: Record<string, Json> = {};
    for (const c of list) {
      if (c.subscriptionCount === 0) continue;
      const out: Record<string, Json> = {};
      if (info.includes("user_count")) out.user_count = c.userCount ?? 0;
      if (info.includes("subscription_count")) out.subscription_count = c.subscriptionCount;
      channels[c.channel] = out;
    }
    return { channels };
  }

  async channel(r: ApiRequest): Promise<Json> {
    const name = channelParam(r.params[0]);
    const info = attrs(r.query.get("info"));
    if (info.includes("user_count") && !channelKind(name).presence)
      throw new PusherHttpError(400, "user_count is only available for presence- channels");
    const count = await this.ctx.presence.subscriberCount(r.app.id, name);
    return { occupied: count > 0, ...(await this.attributes(r.app, name, info, count)) };
  }

  async users(r: ApiRequest): Promise<Json> {
    const name = channelParam(r.params[0]);
    if (!channelKind(name).presence)
      throw new PusherHttpError(400, "Users are only available for presence- channels");
    const members = await this.ctx.presence.members(r.app.id, name);
    return { users: members.map((m) => ({ id: m.userId })) };
  }

  async block(r: ApiRequest, blocked: boolean): Promise<Json> {
    const channel = r.params[0] ?? "";
    if (!isValidChannel(channel)) throw new PusherHttpError(400, "Invalid channel name");
    const userId = blocked ? object(r.body, "body").user_id : r.params[1];
    if (!isValidUserId(userId)) throw new PusherHttpError(400, `user_id must be ${USER_ID_RULE}`);
    await this.ctx.blocks.set(r.app.id, channel, userId, blocked);
    return {};
  }

  async terminate(r: ApiRequest): Promise<Json> {
    const userId = r.params[0] ?? "";
    if (userId === "" || userId.length > 200) throw new PusherHttpError(400, "Invalid user id");
    this.ctx.engine.signalUser(r.app.id, userId, { kind: "terminate" });
    return {};
  }

  private eventSpec(
    app: AppConfig,
    b: Record<string, unknown>,
    list: unknown,
    maxChannels: number,
  ): EventSpec {
    const name = b.name;
    if (typeof name !== "string" || name === "" || name.length > EVENT_NAME_MAX)
      throw new PusherHttpError(400, `name must be 1-${EVENT_NAME_MAX} characters`);
    if (name.startsWith("pusher:") || name.startsWith("pusher_internal:"))
      throw new PusherHttpError(
        403,
        `Event names starting with ${name.split(":")[0]}: are reserved`,
      );
    if (!Array.isArray(list) || list.length === 0)
      throw new PusherHttpError(400, "channels must name at least one channel");
    if (list.length > maxChannels)
      throw new PusherHttpError(400, `At most ${maxChannels} channels per event`);
    for (const ch of list) {
      if (!(isValidChannel(ch) || (typeof ch === "string" && isServerToUser(ch))))
        throw new PusherHttpError(400, `Invalid channel name: ${String(ch).slice(0, 210)}`);
    }
    if (b.data === undefined) throw new PusherHttpError(400, "data is required");
    const data = b.data as Json;
    const size = typeof data === "string" ? Buffer.byteLength(data) : JSON.stringify(data).length;
    if (size > app.limits.maxFrameBytes)
      throw new PusherHttpError(413, `Event data over ${app.limits.maxFrameBytes} bytes`);
    const socketId = b.socket_id;
    if (socketId !== undefined && (typeof socketId !== "string" || !SOCKET_ID.test(socketId)))
      throw new PusherHttpError(400, "Invalid socket_id");
    const info =
      b.info === undefined ? [] : attrs(typeof b.info === "string" ? b.info : null, true);
    const tags = parseTags(b.tags);
    if (!tags.ok) throw new PusherHttpError(400, `Invalid tags: ${tags.message}`);
    return { name, channels: list as string[], data, socketId, info, tags: tags.value };
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
      this.ctx.engine.signalUser(app.id, userId, { kind: "user_event", name: spec.name, data });
      return;
    }
    const started = performance.now();
    await this.ctx.engine.publish(
      app.id,
      channel,
      { name: spec.name, data, tags: spec.tags, excludeConnectionId: spec.socketId },
      { idempotencyKey: key },
    );
    this.ctx.metrics.publishLatency.observe(
      { dialect: "pusher" },
      (performance.now() - started) / 1000,
    );
  }

  private async attributes(
    app: AppConfig,
    channel: string,
    info: Attr[],
    knownCount?: number,
  ): Promise<Record<string, Json>> {
    const out: Record<string, Json> = {};
    if (info.includes("user_count") && channelKind(channel).presence)
      out.user_count = (await this.ctx.presence.members(app.id, channel)).length;
    if (info.includes("subscription_count"))
      out.subscription_count =
        knownCount ?? (await this.ctx.presence.subscriberCount(app.id, channel));
    return out;
  }
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new PusherHttpError(400, `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** `info=user_count,subscription_count`; unknown attributes are an error, as in Pusher. */
function attrs(text: string | null, inBody = false): Attr[] {
  if (text === null || text === "") {
    if (inBody && text === null) throw new PusherHttpError(400, "info must be a string");
    return [];
  }
  const out: Attr[] = [];
  for (const a of text.split(",")) {
    const t = a.trim();
    if (t !== "user_count" && t !== "subscription_count")
      throw new PusherHttpError(400, `Unknown info attribute ${t.slice(0, 50)}`);
    out.push(t);
  }
  return out;
}

function channelParam(p: string | undefined): string {
  if (!isValidChannel(p)) throw new PusherHttpError(400, "Invalid channel name");
  return p;
}

/** `Idempotency-Key` header or body `idempotency_key`, namespaced so dialects never collide. */
function idempotencyKey(r: ApiRequest, b: Record<string, unknown>): string | undefined {
  const k = r.idempotencyKey ?? b.idempotency_key;
  if (k === undefined) return undefined;
  if (typeof k !== "string" || k === "" || k.length > 200)
    throw new PusherHttpError(400, "idempotency_key must be 1-200 characters");
  return `pusher-http\u0000${k}`;
}
