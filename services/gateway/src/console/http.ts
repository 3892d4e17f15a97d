import type { HttpRequest, HttpResponse } from "uWebSockets.js";
import { readBody } from "../http/body.js";

/** Headers on every console answer: never cached, never framed, no referrer leaks. */
export const SECURITY_HEADERS: [string, string][] = [
  ["cache-control", "no-store"],
  ["x-content-type-options", "nosniff"],
  ["x-frame-options", "DENY"],
  ["referrer-policy", "no-referrer"],
  [
    "content-security-policy",
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  ],
];

/** An HTTP status with a message for the operator, answered as `{error}`. */
export class ConsoleHttpError extends Error {
  override name = "ConsoleHttpError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATUS: Record<number, string> = {
  200: "200 OK",
  400: "400 Bad Request",
  401: "401 Unauthorized",
  403: "403 Forbidden",
  404: "404 Not Found",
  413: "413 Payload Too Large",
  429: "429 Too Many Requests",
  500: "500 Internal Server Error",
  503: "503 Service Unavailable",
};

export function statusLine(status: number): string {
  return STATUS[status] ?? `${status} Error`;
}

/** Everything a handler needs from the request, copied out before uWS invalidates it. */
export interface RequestInfo {
  method: string;
  url: string;
  query: URLSearchParams;
  cookie: string;
  csrf: string;
  origin: string;
  host: string;
  /** The TLS-terminating proxy's `x-forwarded-proto`: "https" makes the cookie Secure. */
  forwardedProto: string;
  remoteAddress: string;
}

export function requestInfo(res: HttpResponse, req: HttpRequest): RequestInfo {
  return {
    method: req.getMethod(),
    url: req.getUrl(),
    query: new URLSearchParams(req.getQuery() ?? ""),
    cookie: req.getHeader("cookie"),
    csrf: req.getHeader("x-csrf-token"),
    origin: req.getHeader("origin"),
    host: req.getHeader("host"),
    forwardedProto: req.getHeader("x-forwarded-proto"),
    remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
  };
}

export function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Writes a whole answer, unless the client went away. */
export function send(
  res: HttpResponse,
  state: { aborted: boolean },
  status: number,
  type: string,
  body: string | Buffer,
  extra: [string, string][] = [],
): void {
  if (state.aborted) return;
  res.cork(() => {
    res.writeStatus(statusLine(status)).writeHeader("content-type", type);
    for (const [k, v] of SECURITY_HEADERS) res.writeHeader(k, v);
    for (const [k, v] of extra) res.writeHeader(k, v);
    res.end(body);
  });
}

const BODY_LIMIT = 256 * 1024;

/** A JSON object body; anything else is a 400. */
export async function readJsonBody(
  res: HttpResponse,
  state: { aborted: boolean },
): Promise<Record<string, unknown> | null> {
  const body = await readBody(res, BODY_LIMIT, state);
  if (body === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(body.toString("utf8") || "{}");
  } catch {
    throw new ConsoleHttpError(400, "body is not valid JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new ConsoleHttpError(400, "body must be a JSON object");
  return v as Record<string, unknown>;
}
