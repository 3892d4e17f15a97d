/**
 * The demo chat at `/demo`, built on @tidings/client. It exists only with the
 * development app (TIDINGS_APPS unset), whose secret is public anyway: its
 * `/demo/token` endpoint mints a Herald token for anyone who asks, which no
 * real app may ever offer.
 */

import type { HttpResponse, TemplatedApp } from "uWebSockets.js";
import { existsSync, readFileSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { isValidUserId } from "../../../../shared/src/channels.js";
import type { Config } from "../../../../shared/src/config/load.js";
import { signCompact } from "../dialects/herald/token.js";

const HERE = new URL("./", import.meta.url);
/** The SDK's browser build (`npm run build:client`; `npm start` runs it first). */
const SDK_DIST = fileURLToPath(new URL("../../../../shared/client/dist/", import.meta.url));
const TOKEN_TTL_SEC = 3600;
const ROOM = /^presence-demo-[A-Za-z0-9_-]{1,60}$/;

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";
const TYPES: Record<string, string> = {
  ".html": HTML,
  ".js": JS,
  ".map": "application/json",
  ".css": "text/css; charset=utf-8",
};

export function registerDemo(app: TemplatedApp, config: Config): void {
  if (!config.devApp) return;
  // loadConfig's development app is then the one app there is.
  const devApp = config.apps[0];
  if (!devApp) throw new Error("config.devApp is set but config.apps is empty");
  const page = readFileSync(new URL("page.html", HERE));
  const script = readFileSync(new URL("chat.js", HERE));

  app.get("/demo", (res) => send(res, "200 OK", HTML, page));
  app.get("/demo/chat.js", (res) => send(res, "200 OK", JS, script));
  app.get("/demo/sdk/:file", (res, req) => {
    const file = req.getParameter(0) ?? "";
    // One flat folder of build output: no path separators, no dot files.
    if (!/^[a-z0-9-]+\.(js|js\.map)$/.test(file))
      return send(res, "404 Not Found", "text/plain", "not found");
    const path = `${SDK_DIST}${file}`;
    if (!existsSync(path)) {
      return send(
        res,
        "503 Service Unavailable",
        "text/plain",
        "SDK not built: run `npm run build:client` (npm start does)",
      );
    }
    send(res, "200 OK", TYPES[extname(file)] ?? "text/plain", readFileSync(path));
  });
  app.get("/demo/token", (res, req) => {
    const q = new URLSearchParams(req.getQuery() ?? "");
    const user = q.get("user_id");
    const room = q.get("room") ?? "";
    if (!isValidUserId(user) || !ROOM.test(room)) {
      return send(
        res,
        "400 Bad Request",
        "application/json",
        JSON.stringify({
          error:
            "user_id (1-200 characters) and room (presence-demo-<1-60 of A-Z a-z 0-9 _ ->) are required",
        }),
      );
    }
    const exp = Math.floor(Date.now() / 1000) + TOKEN_TTL_SEC;
    send(
      res,
      "200 OK",
      "application/json",
      JSON.stringify({
        key: devApp.key,
        userId: user,
        streams: [room],
        token: signCompact(devApp.secret, user, room, exp),
      }),
    );
  });
}

function send(res: HttpResponse, status: string, type: string, body: string | Buffer): void {
  res.cork(() => {
    res
      .writeStatus(status)
      .writeHeader("content-type", type)
      .writeHeader("cache-control", "no-store")
      .end(body);
  });
}
