/**
 * Read-side views of one app's presence state (members, channel listings,
 * visible status) and the status/watch announcements made when a user's
 * visible status changes. Pure helpers of `PresenceCore`.
 */
import type { Signal, UserStatus } from "../../../shared/src/engine/engine.js";
import type { ChannelInfo, Member } from "../../../shared/src/presence/api.js";
import type { AppState } from "./indexes.js";
import type { PresenceEffect } from "./types.js";

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
  for (const channel of app.memberOf.get(userId) ?? []) {
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

export function membersOf(app: AppState | undefined, channel: string): Member[] {
  const ch = app?.channels.get(channel);
  if (!app || !ch) return [];
  return [...ch.members].map(([userId, m]) => ({
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
    if (ch.members.size > 0) info.userCount = ch.members.size;
    list.push(info);
  }
  return list;
}
