import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import { safeEqual } from "../../../../../shared/src/auth/jwt.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";
import { jsonTooDeep, MAX_JSON_DEPTH } from "../../../../../shared/src/json-depth.js";
import { failureOf } from "../../api/errors.js";
import type { DialectContext } from "../../core/dialect.js";
import { type Aborted, BodyTooLargeError, readBody } from "../../http/body.js";
import type { Metrics } from "../../metrics.js";
import { decodePublishBody, encode } from "./codec.js";
import { type BroadcasterCode, BroadcasterCodes } from "./codes.js";

const STATUS_TEXT: Record<number, string> = {
  200: "200 OK",
  400: "400 Bad Request",
  401: "401 Unauthorized",
  403: "403 Forbidden",
  404: "404 Not Found",
  409: "409 Conflict",
  413: "413 Payload Too Large",
  500: "500 Internal Server Error",
};
const MAX_IDEMPOTENCY_KEY = 200;

/** `POST /broadcaster/:key/publish` with `Authorization: Bearer API_KEY`. */
export function registerBroadcasterRest(app: TemplatedApp, ctx: DialectContext): void {
  const out = responder(ctx.metrics.httpRequests);
  const { reply } = out;
  app.post("/broadcaster/:key/publish", (res, req) => {
    // uWS request data is only valid in this synchronous part: copy it out first.
    const appKey = req.getParameter(0) ?? "";
    const authorization = req.getHeader("authorization");
    const idempotencyKey = req.getHeader("idempotency-key");

    const target = ctx.apps.byKey(appKey);
    if (!target) return reply(res, "NotFound", `unknown app key ${appKey.slice(0, 64)}`);
    const bearer = /^Bearer (.+)$/i.exec(authorization)?.[1]?.trim();
    if (!bearer) return reply(res, "Unauthenticated", "Authorization: Bearer API_KEY required");
    if (!acceptsKey(target, bearer)) {
      return ctx.apps.all().some((a) => a !== target && acceptsKey(a, bearer))
        ? reply(res, "PermissionDenied", "this API key belongs to another app")
        : reply(res, "Unauthenticated", "unknown API key");
    }
    if (idempotencyKey.length > MAX_IDEMPOTENCY_KEY)
      return reply(
        res,
        "InvalidArgument",
        `Idempotency-Key over ${MAX_IDEMPOTENCY_KEY} characters`,
      );
    publish(res, ctx, out, target, idempotencyKey || undefined).catch((err: unknown) => {
      ctx.log.error({ err, dialect: "broadcaster" }, "REST publish failed before replying");
    });
  });
}

async function publish(
  res: HttpResponse,
  ctx: DialectContext,
  out: Responder,
  app: AppConfig,
  idempotencyKey: string | undefined,
): Promise<void> {
  const { send, reply } = out;
  const state: Aborted = { aborted: false };
  let body: Buffer | null;
  try {
    body = await readBody(res, app.limits.maxFrameBytes, state);
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      res.cork(() => reply(res, "InvalidArgument", err.message, 413));
      return;
    }
    throw err;
  }
  if (body === null) return;
  const text = body.toString("utf8");
  const input = jsonTooDeep(text)
    ? `body nested deeper than ${MAX_JSON_DEPTH}`
    : decodePublishBody(text);
  if (typeof input === "string") {
    res.cork(() => reply(res, "InvalidArgument", input));
    return;
  }
  try {
    const r = await ctx.api.publish(
      app,
      input.channel,
      { name: input.event, data: input.payload },
      { dialect: "broadcaster", idempotencyKey, via: "broadcaster rest" },
    );
    if (state.aborted) return;
    res.cork(() => send(res, 200, JSON.stringify(encode.published(r.id, r.time))));
  } catch (err) {
    const failure = failureOf(err);
    if (failure.kind !== "unavailable")
      ctx.log.error({ err, dialect: "broadcaster" }, "REST publish failed");
    const message = failure.kind === "unavailable" ? failure.message : "internal error";
    if (!state.aborted) res.cork(() => reply(res, "Internal", message));
  }
}

/** An app with API keys accepts only those; without any, its secret stands in. */
function acceptsKey(app: AppConfig, key: string): boolean {
  const keys = app.apiKeys.length > 0 ? app.apiKeys : [app.secret];
  let ok = false;
  // No early exit: every comparison runs so timing does not tell which key matched.
  for (const k of keys) ok = safeEqual(k, key) || ok;
  return ok;
}

type Responder = ReturnType<typeof responder>;

/** Answers in the REST format; every answer goes out through `send`, which counts it. */
function responder(requests: Metrics["httpRequests"]) {
  const send = (res: HttpResponse, status: number, body: string): void => {
    requests.inc({
      dialect: "broadcaster",
      route: "/broadcaster/:key/publish",
      status: String(status),
    });
    res
      .writeStatus(STATUS_TEXT[status] ?? `${status}`)
      .writeHeader("content-type", "application/json")
      .end(body);
  };
  const reply = (res: HttpResponse, code: BroadcasterCode, message: string, status?: number) =>
    send(res, status ?? BroadcasterCodes[code].status, encode.restError(code, message));
  return { send, reply };
}
