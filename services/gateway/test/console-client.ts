import { at } from "../../../shared/test/defined.js";

/** An operator's HTTP session with the console API, as a browser would hold it. */
export interface ConsoleSession {
  cookie: string;
  csrf: string;
  get(path: string): Promise<Response>;
  post(
    path: string,
    body: unknown,
    o?: { csrf?: string | null; origin?: string },
  ): Promise<Response>;
}

export const CONSOLE_SECRET = "test-console-secret-0123456789";

/** POST /console/api/login; the raw answer, for tests of refusals. */
export function consoleLogin(
  http: (path: string) => string,
  body: Record<string, unknown>,
): Promise<Response> {
  return fetch(http("/console/api/login"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Logs in and returns a session holding the cookie and CSRF token the server gave. */
export async function consoleSession(
  http: (path: string) => string,
  body: Record<string, unknown> = { secret: CONSOLE_SECRET, who: "tester" },
): Promise<ConsoleSession> {
  const res = await consoleLogin(http, body);
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const json = (await res.json()) as { csrf: string };
  const cookie = at((res.headers.get("set-cookie") ?? "").split(";"), 0, "a cookie");
  return withCookie(http, cookie, json.csrf);
}

export function withCookie(
  http: (path: string) => string,
  cookie: string,
  csrf: string,
): ConsoleSession {
  return {
    cookie,
    csrf,
    get: (path) => fetch(http(`/console/api/${path}`), { headers: { cookie } }),
    post: (path, body, o = {}) => {
      const headers: Record<string, string> = { cookie, "content-type": "application/json" };
      const token = o.csrf === undefined ? csrf : o.csrf;
      if (token !== null) headers["x-csrf-token"] = token;
      if (o.origin) headers.origin = o.origin;
      return fetch(http(`/console/api/${path}`), {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
    },
  };
}
