/**
 * Online status of one app's users (connections opening and closing, the
 * status/watch announcements when a user's visible status changes) and the
 * read-side views (members, channel listings). Pure helpers of `PresenceCore`.
 */
import type { Signal, UserStatus } from "../../../shared/src/model.js";
import type { ChannelInfo, Member } from "../../../shared/src/presence/api.js";
import type { AppState } from "./indexes.js";
import type { ConnectionRecord, PresenceEffect } from "./types.js";

/** Offline unless connected; a manual status on top (`offline` hides a connected user). */
export function visible(app: AppState, userId: string): UserStatus {
  if (!app.online.has(userId)) return "offline";
  return app.manual.get(userId) ?? "online";
}

/** Runs `mutate` and pushes status/watch signals to `out` if the user's visible status changed. */
export function visibility(
  app: AppState,
  appId: string,
  userId: string,
  out: PresenceEffect[],
  mutate: () => void,
): void {
  const before = visible(app, userId);
  mutate();
  const after = visible(app, userId);
  if (before === after) return;
  const status: Signal = { kind: "status", userId, status: after };
  // Every channel the user is in, presence-tracked or not (Herald shows it on any stream).
  for (const channel of app.inChannels.get(userId)?.keys() ?? []) {
    out.push({ to: "channel", appId, channel, signal: status });
  }
  const wasOnline = before !== "offline";
  const isOnline = after !== "offline";
  for (const watcher of app.watchers.of(userId)) {
    if (wasOnline !== isOnline) {
      out.push({
        to: "user",
        appId,
        userId: watcher,
        signal: { kind: "watch", userId, online: isOnline },
      });
    }
    out.push({ to: "user", appId, userId: watcher, signal: status });
  }
}

/** Marks `conn` opened as `userId` with `watchlist`; true if anything changed. */
export function setOpened(
  app: AppState,
  appId: string,
  conn: ConnectionRecord,
  userId: string,
  watchlist: readonly string[],
  out: PresenceEffect[],
): boolean {
  const sameWatch =
    conn.watchlist.length === watchlist.length &&
    conn.watchlist.every((w, i) => w === watchlist[i]);
  if (conn.opened && conn.userId === userId && sameWatch) return false;
  if (conn.opened) setClosed(app, appId, conn, out);
  conn.userId = userId;
  conn.watchlist = watchlist;
  app.watchers.add(userId, watchlist);
  visibility(app, appId, userId, out, () => {
    conn.opened = true;
    const set = app.online.get(userId) ?? new Set();
    app.online.set(userId, set.add(conn.connectionId));
  });
  return true;
}

/** Marks `conn` no longer online; true if it was. */
export function setClosed(
  app: AppState,
  appId: string,
  conn: ConnectionRecord,
  out: PresenceEffect[],
): boolean {
  const userId = conn.userId;
  if (!conn.opened || userId === undefined) return false;
  app.watchers.remove(userId, conn.watchlist);
  visibility(app, appId, userId, out, () => {
    conn.opened = false;
    const set = app.online.get(userId);
    set?.delete(conn.connectionId);
    if (set?.size === 0) app.online.delete(userId);
  });
  return true;
}

export function membersOf(app: AppState | undefined, channel: string): Member[] {
  const ch = app?.channels.get(channel);
  if (!app || !ch) return [];
  return [...(ch.members ?? [])].map(([userId, m]) => ({
    userId,
    ...(m.info === undefined ? {} : { info: m.info }),
    status: visible(app, userId),
  }));
}

/** Channels with at least one subscription (presence entries alone do not occupy one). */
export function channelsOf(app: AppState | undefined, prefix: string): ChannelInfo[] {
  if (!app) return [];
  const list: ChannelInfo[] = [];
  for (const [channel, ch] of app.channels) {
    if (!channel.startsWith(prefix)) continue;
    const info: ChannelInfo = { channel, subscriptionCount: ch.conns.size };
    if (ch.members && ch.members.size > 0) info.userCount = ch.members.size;
    list.push(info);
  }
  return list;
}
