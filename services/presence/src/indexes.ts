/**
 * Derived indexes of one app's presence state. They only ever change
 * together with the connection records, inside `PresenceCore`.
 */
import type { Json, UserStatus } from "../../../shared/src/model.js";
import type { SmallSet } from "../../../shared/src/small-set.js";
import type { ConnectionRecord } from "./types.js";

export interface MemberState {
  conns: Set<string>;
  /** From the user's first member connection (later ones don't change it). */
  info?: Json | undefined;
}

export interface ChannelState {
  conns: SmallSet;
  /** Made with the first member: most channels (public, private) never have one. */
  members: Map<string, MemberState> | undefined;
}

export interface AppState {
  conns: Map<string, ConnectionRecord>;
  channels: Map<string, ChannelState>;
  /** userId → its opened connections (online while non-empty). */
  online: Map<string, Set<string>>;
  /**
   * userId → channel → how many of the user's connections subscribe to it,
   * member or not: a status change goes to every channel the user is in.
   */
  inChannels: Map<string, Map<string, number>>;
  watchers: WatchIndex;
  /** Manual statuses other than the default `online`. */
  manual: Map<string, UserStatus>;
  /**
   * Connection-level presence entries: channel → connectionId → entry. Kept
   * apart from `channels` because an entry needs no subscription, and a
   * channel holding only entries is not occupied.
   */
  present: Map<string, Map<string, EntryState>>;
}

export interface EntryState {
  clientId: string;
  data?: Json | undefined;
}

/**
 * Who watches whom. Counted per watcher connection: one of a watcher's
 * connections closing must not end a watch its other connections still hold.
 */
export class WatchIndex {
  /** watched userId → watcher userId → number of watcher connections. */
  private readonly byWatched = new Map<string, Map<string, number>>();

  add(watcher: string, watchlist: readonly string[]): void {
    for (const w of watchlist) {
      const ws = this.byWatched.get(w) ?? new Map<string, number>();
      this.byWatched.set(w, ws.set(watcher, (ws.get(watcher) ?? 0) + 1));
    }
  }

  remove(watcher: string, watchlist: readonly string[]): void {
    for (const w of watchlist) {
      const ws = this.byWatched.get(w);
      const n = (ws?.get(watcher) ?? 0) - 1;
      if (n > 0) ws?.set(watcher, n);
      else ws?.delete(watcher);
      if (ws?.size === 0) this.byWatched.delete(w);
    }
  }

  of(userId: string): Iterable<string> {
    return this.byWatched.get(userId)?.keys() ?? [];
  }
}

export function newAppState(): AppState {
  return {
    conns: new Map(),
    channels: new Map(),
    online: new Map(),
    inChannels: new Map(),
    watchers: new WatchIndex(),
    manual: new Map(),
    present: new Map(),
  };
}
