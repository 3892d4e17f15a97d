import { isValidUserId, USER_ID_RULE } from "../../../../../shared/src/channels.js";
import type { Signal } from "../../../../../shared/src/model.js";
import type { Connection } from "../../core/connection.js";
import { verifyUserAuth } from "./auth.js";
import { encode, type WatchlistEvent } from "./codec.js";
import { PusherClose } from "./codes.js";
import { codeText, type PusherReplies } from "./replies.js";
import type { PusherConnection } from "./state.js";

/** Pusher caps a watchlist at 100 users. */
const MAX_WATCHLIST = 100;

/** `pusher:signin` and what follows from it: server-to-user events, watchlists, termination. */
export class PusherUsers {
  constructor(private readonly replies: PusherReplies) {}

  async signin(s: PusherConnection, auth: string, userData: string): Promise<void> {
    const { session } = s;
    const { conn } = session;
    if (s.user || s.signingIn) return this.refuse(conn, "already signed in");
    if (!verifyUserAuth(session.app, conn.id, auth, userData))
      return this.refuse(conn, "Invalid signature");
    const parsed = parseUserData(userData);
    if (typeof parsed === "string") return this.refuse(conn, parsed);
    s.signingIn = true;
    const { id, watchlist } = parsed;
    conn.userId = id;
    await session.identify(id, (signal) => userSignal(conn, id, signal));
    // Watch signals only report changes; who is online already is asked once, after the success.
    const online = await session.online(id, watchlist, () => {
      if (conn.closed) return;
      s.user = { id, userData };
      s.signingIn = false;
      conn.send(encode.signinSuccess(userData));
    });
    if (online.length > 0 && !conn.closed) {
      conn.send(encode.watchlistEvents([{ name: "online", user_ids: online }]));
    }
  }

  private refuse(conn: Connection, why: string): void {
    this.replies.error(conn, PusherClose.unauthorized, `Sign-in refused: ${why}`);
    conn.close(PusherClose.unauthorized, codeText(PusherClose.unauthorized));
  }
}

function userSignal(conn: Connection, userId: string, signal: Signal): void {
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
      conn.close(PusherClose.unauthorized, codeText(PusherClose.unauthorized));
      return;
    default:
      return;
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
