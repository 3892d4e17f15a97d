import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import { jsonTooDeep, MAX_JSON_DEPTH } from "../../../../../shared/src/json-depth.js";
import type { Json } from "../../../../../shared/src/model.js";
import { failureOf } from "../../api/errors.js";
import type { DialectContext } from "../../core/dialect.js";
import { type Aborted, BodyTooLargeError, readBody } from "../../http/body.js";
import { PusherHttpError, PusherHttpStatus } from "./codes.js";
import { type ApiRequest, MAX_BATCH, PusherHttpApi } from "./http-requests.js";
import { verifyEnvelope, verifySignature } from "./http-sign.js";

type Handler = (r: ApiRequest) => Promise<Json>;

/** The Pusher HTTP API at `/apps/{app_id}/...`, signed as Pusher signs it. */
export function registerPusherHttp(uws: TemplatedApp, ctx: DialectContext): void {
  const api = new PusherHttpApi(ctx.api);
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
      serve(ctx, res, state, method, pattern, path, query, raw, idempotencyKey, handler);
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
  ctx: DialectContext,
  res: HttpResponse,
  state: Aborted,
  method: "get" | "post" | "del",
  /** The route template (`/apps/:app_id/events`): the metric's label, never the path itself. */
  pattern: string,
  path: string,
  query: URLSearchParams,
  raw: string[],
  idempotencyKey: string | undefined,
  handler: Handler,
): void {
  const respond = (status: string, type: string, text: string) => {
    ctx.metrics.httpRequests.inc({ dialect: "pusher", route: pattern, status: status.slice(0, 3) });
    if (state.aborted) return;
    res.cork(() => {
      res.writeStatus(status).writeHeader("content-type", type).end(text);
    });
  };
  const run = async (): Promise<Json | undefined> => {
    const app = ctx.apps.byId(decodeParam(raw[0] ?? ""));
    if (!app) throw new PusherHttpError(404, "Unknown app");
    // Before any body is read, so a request that cannot be valid never gets one buffered.
    const params = verifyEnvelope(app, query, Math.floor(Date.now() / 1000));
    let body: Buffer = EMPTY;
    if (method === "post") {
      const read = await readBody(res, bodyLimit(app), state);
      if (read === null) return undefined;
      body = read;
    }
    const verb = method === "del" ? "DELETE" : method.toUpperCase();
    verifySignature(app, verb, path, params, body);
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
      let status: keyof typeof PusherHttpStatus;
      let text: string;
      const failure = failureOf(err);
      if (err instanceof PusherHttpError) {
        status = err.status;
        text = err.message;
      } else if (err instanceof BodyTooLargeError) {
        status = 413;
        text = "Request body too large";
      } else if (failure.kind === "request") {
        status = failure.status;
        text = failure.message;
      } else if (failure.kind === "unavailable") {
        ctx.metrics.errors.inc({ dialect: "pusher", code: "http_503" });
        // Worth a retry: 503, in the words this API has always answered it with.
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

const EMPTY = Buffer.alloc(0);

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
