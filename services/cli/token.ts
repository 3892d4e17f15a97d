/**
 * `tidings token`: the credentials each dialect's auth accepts, minted with
 * the same signing code the gateway verifies against.
 */
import { SignJWT } from "jose";
import { isValidUserId, USER_ID_RULE } from "../../shared/src/channels.js";
import type { AppConfig } from "../../shared/src/config/apps.js";
import { signCompact } from "../gateway/src/dialects/herald/token.js";
import { channelAuth, userAuth } from "../gateway/src/dialects/pusher/auth.js";
import { UsageError } from "./usage.js";

export const DIALECTS = ["herald", "broadcaster", "chat", "foony", "pusher"] as const;
export type TokenDialect = (typeof DIALECTS)[number];

export interface TokenOptions {
  user?: string | undefined;
  channels: string[];
  expiresSec: number;
  jwt: boolean;
  watchlist: string[];
  scope: string[];
  contacts: string[];
  ops: string[];
  claims: Record<string, unknown>;
  socketId?: string | undefined;
  channel?: string | undefined;
  userInfo?: unknown;
  signin: boolean;
}

const SCOPES = ["subscribe", "publish"];
const OPS = ["subscribe", "publish", "presence", "history"];

/** The credential as printed: a token, or Pusher's auth JSON. */
export async function mintToken(
  dialect: TokenDialect,
  app: AppConfig,
  o: TokenOptions,
  nowSec: number,
): Promise<string> {
  if (dialect === "pusher") return pusherAuth(app, o);
  const user = requireUser(o.user, dialect);
  const exp = nowSec + o.expiresSec;
  switch (dialect) {
    case "herald": {
      if (!o.jwt) {
        if (o.channels.some((c) => c.includes("*")))
          throw new UsageError(
            "a compact Herald token lists exact stream ids; use --jwt for prefixes",
          );
        if (o.watchlist.length > 0) throw new UsageError("--watchlist needs --jwt");
        return signCompact(app.secret, user, o.channels.join(","), exp);
      }
      const claims: Record<string, unknown> = { streams: o.channels };
      if (o.watchlist.length > 0) claims.watchlist = o.watchlist;
      return sign(app, { ...claims, ...o.claims }, user, exp);
    }
    case "broadcaster": {
      const bad = o.scope.find((s) => !SCOPES.includes(s));
      if (bad) throw new UsageError(`--scope: ${bad} is not one of ${SCOPES.join(", ")}`);
      const claims = {
        aud: "broadcaster",
        iat: nowSec,
        authorizedChannels: o.channels,
        scope: o.scope,
      };
      return sign(app, { ...claims, ...o.claims }, user, exp);
    }
    case "chat":
      return sign(app, { contacts: o.contacts, ...o.claims }, user, exp);
    case "foony": {
      const bad = o.ops.find((op) => !OPS.includes(op));
      if (bad) throw new UsageError(`--ops: ${bad} is not one of ${OPS.join(", ")}`);
      const capability = Object.fromEntries(o.channels.map((c) => [c, o.ops]));
      return sign(app, { capability, ...o.claims }, user, exp, { kid: app.key });
    }
  }
}

function requireUser(user: string | undefined, dialect: string): string {
  if (user === undefined) throw new UsageError(`${dialect} tokens need --user`);
  if (!isValidUserId(user)) throw new UsageError(`--user must be ${USER_ID_RULE}`);
  return user;
}

function sign(
  app: AppConfig,
  claims: Record<string, unknown>,
  sub: string,
  exp: number,
  header: { kid?: string } = {},
): Promise<string> {
  return new SignJWT({ sub, exp, ...claims })
    .setProtectedHeader({ alg: "HS256", ...header })
    .sign(new TextEncoder().encode(app.secret));
}

/** What a Pusher auth endpoint answers; the client library sends it on subscribe or signin. */
function pusherAuth(app: AppConfig, o: TokenOptions): string {
  if (!o.socketId)
    throw new UsageError("pusher needs --socket-id (from pusher:connection_established)");
  if (o.signin) {
    const user = requireUser(o.user, "pusher --signin");
    const userData = JSON.stringify({
      id: user,
      ...(o.userInfo === undefined ? {} : { user_info: o.userInfo }),
    });
    return JSON.stringify({ auth: userAuth(app, o.socketId, userData), user_data: userData });
  }
  const channel = o.channel;
  if (!channel)
    throw new UsageError("pusher needs --channel (a private- or presence- channel), or --signin");
  if (channel.startsWith("presence-")) {
    const user = requireUser(o.user, "a presence channel's");
    const channelData = JSON.stringify({
      user_id: user,
      ...(o.userInfo === undefined ? {} : { user_info: o.userInfo }),
    });
    return JSON.stringify({
      auth: channelAuth(app, o.socketId, channel, channelData),
      channel_data: channelData,
    });
  }
  if (!channel.startsWith("private-"))
    throw new UsageError(
      "--channel: only private- and presence- channels are authorized; public ones need no auth",
    );
  return JSON.stringify({ auth: channelAuth(app, o.socketId, channel) });
}

/** `90`, `90s`, `10m`, `1h`, `2d` → seconds. */
export function parseDuration(text: string): number {
  const m = /^([0-9]+)([smhd]?)$/.exec(text.trim());
  const n = m
    ? Number(m[1]) * ({ "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] ?? ""] ?? 1)
    : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(
      `--expires: ${JSON.stringify(text)} is not a duration like 3600, 90s, 10m, 1h or 7d`,
    );
  return n;
}
