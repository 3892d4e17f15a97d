import { isValidUserId, USER_ID_RULE } from "../../../../../shared/src/channels.js";
import type { Signal } from "../../../../../shared/src/model.js";
import type { Connection } from "../../core/connection.js";
import type { GatewayContext } from "../../core/dialect.js";
import { verifyUserAuth } from "./auth.js";
import { encode, type WatchlistEvent } from "./codec.js";
import { PusherClose, PusherCodeText } from "./codes.js";
import type { PusherSession } from "./session.js";

/** Pusher caps a watchlist at 100 users. */
const MAX_WATCHLIST = 100;

/** `pusher:signin` and what follows from it: server-to-user events, watchlists, termination. */
export class PusherUsers {
  constructor(private readonly ctx: GatewayContext) {}

  async signin(conn: Connection, s: PusherSession, auth: string, userData: string): Promise<void> {
    const app = conn.app!;
    if (s.user || s.signingIn) return this.refuse(conn, "already signed in");
    if (!verifyUserAuth(app, conn.id, auth, userData))
      return this.refuse(conn, "Invalid signature");
    const parsed = parseUserData(userData);
    if (typeof parsed === "string") return this.refuse(conn, parsed);
    s.signingIn = true;
    const { id, watchlist } = parsed;
    conn.userId = id;
    await this.ctx.users.add(conn, conn.app!.id, id, (signal) => this.userSignal(conn, id, signal));
    await this.ctx.presence.connectionOpened(app.id, conn.id, id, watchlist);
    if (conn.closed) return;
    s.user = { id, userData };
    s.signingIn = false;
    conn.send(encode.signinSuccess(userData));
    if (watchlist.length === 0) return;
    // Watch signals only report changes; who is online already is asked once here.
    const statuses = await Promise.all(watchlist.map((w) => this.ctx.presence.status(app.id, w)));
    const online = watchlist.filter((_, i) => statuses[i] !== "offline");
    if (online.length > 0 && !conn.closed) {
      conn.send(encode.watchlistEvents([{ name: "online", user_ids: online }]));
    }
  }

  private userSignal(conn: Connection, userId: string, signal: Signal): void {
    switch (signal.kind) {
      case "direct":
        conn.send(encode.userEvent(userId, signal.name, signal.data));
        return;
      case "watch": {
        const event: WatchlistEvent = {
          name: signal.online ? "online" : "offline",
          user_ids: [signal.userId],
        };
        conn.send(encode.watchlistEvents([event]));
        return;
      }
      case "terminate":
        conn.send(encode.error(PusherClose.unauthorized, "Connections terminated for this user"));
        conn.close(PusherClose.unauthorized, PusherCodeText[PusherClose.unauthorized]!);
        return;
      default:
        return;
    }
  }

  private refuse(conn: Connection, why: string): void {
    this.ctx.metrics.errors.inc({ dialect: "pusher", code: String(PusherClose.unauthorized) });
    conn.send(encode.error(PusherClose.unauthorized, `Sign-in refused: ${why}`));
    conn.close(PusherClose.unauthorized, PusherCodeText[PusherClose.unauthorized]!);
  }
}

/** `user_data`: a JSON object with a non-empty string `id` and an optional `watchlist`. */
function parseUserData(text: string): { id: string; watchlist: string[] } | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "user_data is not valid JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return "user_data must be a JSON object";
  const v = value as Record<string, unknown>;
  if (!isValidUserId(v.id)) return `user_data needs a string id of ${USER_ID_RULE}`;
  const w = v.watchlist ?? [];
  if (!Array.isArray(w) || !w.every(isValidUserId))
    return `watchlist must be an array of user ids (${USER_ID_RULE})`;
  if (w.length > MAX_WATCHLIST) return `watchlist holds at most ${MAX_WATCHLIST} users`;
  return { id: v.id, watchlist: w as string[] };
}
