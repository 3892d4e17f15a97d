/**
 * Pusher signatures: channel authorization (`private-`, `presence-`),
 * user authentication (`pusher:signin`) and HTTP API request signing all
 * use HMAC-SHA256 with the app secret, hex encoded. Comparisons are
 * constant-time.
 */

import { createHash, createHmac } from "node:crypto";
import { safeEqual } from "../../../../../shared/src/auth/jwt.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";

export function hmacHex(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text).digest("hex");
}

export function md5Hex(body: Buffer | string): string {
  return createHash("md5").update(body).digest("hex");
}

/** `auth` for a channel subscription: `key:hex(HMAC(secret, socket_id:channel[:channel_data]))`. */
export function channelAuth(
  app: AppConfig,
  socketId: string,
  channel: string,
  channelData?: string,
): string {
  const signed =
    channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return `${app.key}:${hmacHex(app.secret, signed)}`;
}

/** `auth` for `pusher:signin`: the same HMAC over `socket_id::user::user_data`. */
export function userAuth(app: AppConfig, socketId: string, userData: string): string {
  return `${app.key}:${hmacHex(app.secret, `${socketId}::user::${userData}`)}`;
}

export function verifyChannelAuth(
  app: AppConfig,
  socketId: string,
  channel: string,
  auth: string | undefined,
  channelData: string | undefined,
): boolean {
  if (auth === undefined) return false;
  return safeEqual(auth, channelAuth(app, socketId, channel, channelData));
}

export function verifyUserAuth(
  app: AppConfig,
  socketId: string,
  auth: string,
  userData: string,
): boolean {
  return safeEqual(auth, userAuth(app, socketId, userData));
}
