/**
 * The presence state machine, shared by the in-process `LocalPresence` and
 * the NATS presence service. Pure: no I/O, no clock. Every operation returns
 * the effects (signals to emit, counts to publish) it caused, so callers
 * decide when and how to emit them (after persisting, for the service).
 *
 * The source of truth is the set of connections, each with its
 * subscriptions; membership, counts, online status and watchers are indexes
 * derived from it. Effects are emitted only on user-level transitions: a
 * user joins a channel with its first member connection and leaves with its
 * last, goes online with its first opened connection and offline with its
 * last. That is what makes a resync (`syncGateway`) free of spurious events.
 * Presence entries (`entries.ts`) are the connection-level exception: each
 * is announced itself, and only when it actually changes, for the same reason.
 */
import type { PresenceVersion, Signal, UserStatus } from "../../../shared/src/model.js";
import type {
  ChannelInfo,
  Member,
  PresenceChange,
  PresenceEntry,
  SubscribeOutcome,
} from "../../../shared/src/presence/api.js";
import {
  type ConnectionSnapshot,
  NO_ITEMS,
  type SubscriptionSnapshot,
} from "../../../shared/src/presence/messages.js";
import { SmallSet } from "../../../shared/src/small-set.js";
import { dropEntry, entriesOf, putEntry } from "./entries.js";
import { type AppState, type ChannelState, newAppState } from "./indexes.js";
import {
  type ConnectionRecord,
  DirtyKeys,
  type JoinRequest,
  type PresenceEffect,
} from "./types.js";
import { channelsOf, membersOf, setClosed, setOpened, visibility, visible } from "./views.js";

export type { ConnectionRecord, JoinRequest, PresenceEffect } from "./types.js";

/** Counts one more (`by` = 1) or one fewer (-1) of the user's connections in `channel`. */
function linkUser(app: AppState, userId: string, channel: string, by: 1 | -1): void {
  const chans = app.inChannels.get(userId) ?? new Map<string, number>();
  const n = (chans.get(channel) ?? 0) + by;
  if (n > 0) chans.set(channel, n);
  else chans.delete(channel);
  if (chans.size > 0) app.inChannels.set(userId, chans);
  else app.inChannels.delete(userId);
}

export class PresenceCore {
  private readonly apps = new Map<string, AppState>();
  private readonly dirty: DirtyKeys;
  private out: PresenceEffect[] = [];
  /** Membership and entry signals stamped so far in this epoch. */
  private stamped = 0;

  /**
   * `trackDirty`: record changed connections/statuses for `takeDirty` (off when nothing persists).
   * `epoch`: must exceed the epoch of every earlier owner of the same state (the service
   * uses the lease revision it took over with), so versions only ever grow.
   */
  constructor(
    trackDirty = true,
    private readonly epoch = 0,
  ) {
    this.dirty = new DirtyKeys(trackDirty);
  }

  /** The version of the current state: every membership signal so far is at or below it. */
  version(): PresenceVersion {
    return [this.epoch, this.stamped];
  }

  join(
    gatewayId: string,
    req: JoinRequest,
  ): { outcome: SubscribeOutcome; effects: PresenceEffect[] } {
    const app = this.app(req.appId);
    const ch = app.channels.get(req.channel);
    const user = req.member ? req.userId : undefined;
    if (
      user !== undefined &&
      !ch?.members?.has(user) &&
      (ch?.members?.size ?? 0) >= req.maxMembers
    ) {
      return { outcome: { ok: false, reason: "full" }, effects: [] };
    }
    const conn = this.conn(app, req.appId, req.connectionId, gatewayId);
    const sub = { channel: req.channel, userId: req.userId, info: req.info, member: req.member };
    this.putSub(app, req.appId, conn, sub);
    const effects = this.flush();
    const outcome: SubscribeOutcome = {
      ok: true,
      members: this.members(req.appId, req.channel),
      subscriberCount: this.subscriberCount(req.appId, req.channel),
      version: this.version(),
    };
    return { outcome, effects };
  }

  leave(appId: string, channel: string, connectionId: string): PresenceEffect[] {
    const app = this.apps.get(appId);
    const conn = app?.conns.get(connectionId);
    if (!app || !conn) return [];
    this.dropSub(app, appId, conn, channel);
    this.gcConn(app, conn);
    return this.flush();
  }

  open(
    gatewayId: string,
    appId: string,
    connectionId: string,
    userId: string,
    watchlist: readonly string[],
  ) {
    const app = this.app(appId);
    const conn = this.conn(app, appId, connectionId, gatewayId);
    this.setOpened(app, appId, conn, userId, [...watchlist]);
    return this.flush();
  }

  close(appId: string, connectionId: string): PresenceEffect[] {
    const app = this.apps.get(appId);
    const conn = app?.conns.get(connectionId);
    if (app && conn) this.removeConn(app, appId, conn);
    return this.flush();
  }

  /** Sets or removes a connection's presence entry (announced only if it changes). */
  setPresence(gatewayId: string, c: PresenceChange): PresenceEffect[] {
    if (c.action === "leave") {
      const app = this.apps.get(c.appId);
      const conn = app?.conns.get(c.connectionId);
      if (app && conn && dropEntry(app, c.appId, conn, c.channel, c.data, this.out)) {
        this.touch(c.appId, conn);
        this.gcConn(app, conn);
      }
      return this.flush();
    }
    const app = this.app(c.appId);
    const conn = this.conn(app, c.appId, c.connectionId, gatewayId);
    const entry = { channel: c.channel, clientId: c.clientId, data: c.data };
    if (putEntry(app, c.appId, conn, entry, this.out)) this.touch(c.appId, conn);
    return this.flush();
  }

  setStatus(appId: string, userId: string, status: UserStatus): PresenceEffect[] {
    const app = this.app(appId);
    visibility(app, appId, userId, this.out, () => {
      if (status === "online") app.manual.delete(userId);
      else app.manual.set(userId, status);
    });
    this.dirty.status(appId, userId);
    return this.flush();
  }

  /**
   * Replaces everything `gatewayId` had (among connections whose app passes
   * `inScope`) with `snapshot`. Additions run before removals, so a user who
   * only moved from one connection to another never "leaves and rejoins".
   */
  syncGateway(
    gatewayId: string,
    snapshot: readonly ConnectionSnapshot[],
    inScope: (appId: string) => boolean = () => true,
  ): PresenceEffect[] {
    const wanted = new Set(snapshot.map((s) => `${s.appId}\0${s.connectionId}`));
    for (const s of snapshot) {
      const app = this.app(s.appId);
      const conn = this.conn(app, s.appId, s.connectionId, gatewayId);
      conn.gatewayId = gatewayId;
      if (s.opened && s.userId !== undefined)
        this.setOpened(app, s.appId, conn, s.userId, s.watchlist);
      for (const sub of s.subs) this.putSub(app, s.appId, conn, sub);
      for (const e of s.present ?? [])
        if (putEntry(app, s.appId, conn, e, this.out)) this.touch(s.appId, conn);
    }
    for (const s of snapshot) {
      const app = this.app(s.appId);
      const conn = app.conns.get(s.connectionId);
      if (!conn) continue;
      const keep = new Set(s.subs.map((x) => x.channel));
      for (const sub of [...conn.subs])
        if (!keep.has(sub.channel)) this.dropSub(app, s.appId, conn, sub.channel);
      const keepEntries = new Set((s.present ?? []).map((e) => e.channel));
      for (const e of [...(conn.present ?? [])])
        if (!keepEntries.has(e.channel)) this.dropEntry(app, s.appId, conn, e.channel);
      if (!s.opened && conn.opened) this.setClosed(app, s.appId, conn);
      this.gcConn(app, conn);
    }
    for (const [appId, app] of this.apps) {
      if (!inScope(appId)) continue;
      for (const conn of [...app.conns.values()]) {
        if (conn.gatewayId === gatewayId && !wanted.has(`${appId}\0${conn.connectionId}`)) {
          this.removeConn(app, appId, conn);
        }
      }
    }
    return this.flush();
  }

  /** A dead gateway: all its connections close. */
  dropGateway(gatewayId: string): PresenceEffect[] {
    return this.syncGateway(gatewayId, []);
  }

  /** Gateways that hold at least one connection here. */
  gateways(): Set<string> {
    const ids = new Set<string>();
    for (const app of this.apps.values()) for (const c of app.conns.values()) ids.add(c.gatewayId);
    return ids;
  }

  /**
   * Restores persisted state without emitting anything: what was persisted
   * had already been announced by the previous owner.
   */
  load(
    records: readonly ConnectionRecord[],
    statuses: readonly { appId: string; userId: string; status: UserStatus }[],
  ) {
    for (const s of statuses) this.setStatus(s.appId, s.userId, s.status);
    const byGateway = new Map<string, ConnectionRecord[]>();
    for (const r of records) byGateway.set(r.gatewayId, [...(byGateway.get(r.gatewayId) ?? []), r]);
    for (const [gw, recs] of byGateway) this.syncGateway(gw, recs, () => false);
    this.dirty.take();
    this.out = [];
  }

  members(appId: string, channel: string): Member[] {
    return membersOf(this.apps.get(appId), channel);
  }

  present(appId: string, channel: string): PresenceEntry[] {
    return entriesOf(this.apps.get(appId), channel);
  }

  subscriberCount(appId: string, channel: string): number {
    return this.apps.get(appId)?.channels.get(channel)?.conns.size ?? 0;
  }

  channels(appId: string, prefix = ""): ChannelInfo[] {
    return channelsOf(this.apps.get(appId), prefix);
  }

  status(appId: string, userId: string): UserStatus {
    const app = this.apps.get(appId);
    return app ? visible(app, userId) : "offline";
  }

  connection(appId: string, connectionId: string): ConnectionRecord | undefined {
    return this.apps.get(appId)?.conns.get(connectionId);
  }

  manualStatus(appId: string, userId: string): UserStatus | undefined {
    return this.apps.get(appId)?.manual.get(userId);
  }

  /** Connections and statuses changed since the last call (for persistence). */
  takeDirty() {
    return this.dirty.take();
  }

  private putSub(app: AppState, appId: string, conn: ConnectionRecord, sub: SubscriptionSnapshot) {
    const old = conn.subs.find((s) => s.channel === sub.channel);
    if (old && old.member === sub.member && old.userId === sub.userId) return;
    this.touch(appId, conn);
    // A changed resubscribe: add the new form before dropping the old so an
    // unchanged user does not flap.
    const ch = app.channels.get(sub.channel) ?? { conns: new SmallSet(), members: undefined };
    app.channels.set(sub.channel, ch);
    // Before the member effect, so a receiver sees occupied → member_added.
    if (ch.conns.size === 0)
      this.out.push({ to: "occupancy", appId, channel: sub.channel, occupied: true });
    if (sub.member && sub.userId !== undefined) this.addMember(appId, ch, sub, conn.connectionId);
    if (sub.userId !== undefined) linkUser(app, sub.userId, sub.channel, 1);
    if (old) {
      this.unlinkSub(app, appId, conn, old);
      if (old.userId !== undefined) linkUser(app, old.userId, old.channel, -1);
    }
    // concat sizes the array exactly; a spread grows it to 17 slots (136 B more per subscription).
    conn.subs = (old ? conn.subs.filter((s) => s !== old) : conn.subs).concat({ ...sub });
    const before = ch.conns.size;
    ch.conns.add(conn.connectionId);
    if (ch.conns.size !== before) this.count(appId, sub.channel, ch);
  }

  private addMember(appId: string, ch: ChannelState, sub: SubscriptionSnapshot, connId: string) {
    const userId = sub.userId as string;
    const m = ch.members?.get(userId);
    if (m) {
      m.conns.add(connId);
      return;
    }
    ch.members ??= new Map();
    ch.members.set(userId, { conns: new Set([connId]), info: sub.info });
    const signal: Signal = {
      kind: "member",
      action: "joined",
      userId,
      excludeConnectionId: connId,
    };
    if (sub.info !== undefined) signal.info = sub.info;
    this.out.push({ to: "channel", appId, channel: sub.channel, signal });
  }

  private dropSub(app: AppState, appId: string, conn: ConnectionRecord, channel: string) {
    const sub = conn.subs.find((s) => s.channel === channel);
    if (!sub) return;
    this.touch(appId, conn);
    conn.subs = conn.subs.filter((s) => s !== sub);
    this.unlinkSub(app, appId, conn, sub);
    if (sub.userId !== undefined) linkUser(app, sub.userId, channel, -1);
    const ch = app.channels.get(channel);
    if (!ch) return;
    ch.conns.delete(conn.connectionId);
    this.count(appId, channel, ch);
    if (ch.conns.size === 0) this.out.push({ to: "occupancy", appId, channel, occupied: false });
    if (ch.conns.size === 0 && !ch.members) app.channels.delete(channel);
  }

  /** Removes the membership part of a subscription (the connection count is the caller's). */
  private unlinkSub(
    app: AppState,
    appId: string,
    conn: ConnectionRecord,
    sub: SubscriptionSnapshot,
  ) {
    if (!sub.member || sub.userId === undefined) return;
    const ch = app.channels.get(sub.channel);
    const m = ch?.members?.get(sub.userId);
    if (!ch?.members || !m?.conns.delete(conn.connectionId) || m.conns.size > 0) return;
    ch.members.delete(sub.userId);
    if (ch.members.size === 0) ch.members = undefined;
    const signal: Signal = { kind: "member", action: "left", userId: sub.userId };
    if (m.info !== undefined) signal.info = m.info;
    this.out.push({ to: "channel", appId, channel: sub.channel, signal });
  }

  private setOpened(
    app: AppState,
    appId: string,
    conn: ConnectionRecord,
    userId: string,
    watchlist: readonly string[],
  ) {
    if (setOpened(app, appId, conn, userId, watchlist, this.out)) this.touch(appId, conn);
  }

  private setClosed(app: AppState, appId: string, conn: ConnectionRecord) {
    if (setClosed(app, appId, conn, this.out)) this.touch(appId, conn);
  }

  private removeConn(app: AppState, appId: string, conn: ConnectionRecord) {
    for (const e of [...(conn.present ?? [])]) this.dropEntry(app, appId, conn, e.channel);
    for (const sub of [...conn.subs]) this.dropSub(app, appId, conn, sub.channel);
    this.setClosed(app, appId, conn);
    this.touch(appId, conn);
    app.conns.delete(conn.connectionId);
  }

  /** A leave with the entry's last data. */
  private dropEntry(app: AppState, appId: string, conn: ConnectionRecord, channel: string) {
    if (dropEntry(app, appId, conn, channel, undefined, this.out)) this.touch(appId, conn);
  }

  /** A connection with no subscription, presence entry or online state is forgotten. */
  private gcConn(app: AppState, conn: ConnectionRecord) {
    if (conn.subs.length === 0 && !conn.opened && (conn.present?.length ?? 0) === 0)
      app.conns.delete(conn.connectionId);
  }

  private count(appId: string, channel: string, ch: ChannelState) {
    this.out.push({ to: "count", appId, channel, count: ch.conns.size });
  }

  private conn(
    app: AppState,
    appId: string,
    connectionId: string,
    gatewayId: string,
  ): ConnectionRecord {
    let conn = app.conns.get(connectionId);
    if (!conn) {
      conn = {
        appId,
        connectionId,
        gatewayId,
        opened: false,
        watchlist: NO_ITEMS,
        subs: NO_ITEMS,
        present: undefined,
      };
      app.conns.set(connectionId, conn);
      this.touch(appId, conn);
    }
    return conn;
  }

  private touch(appId: string, conn: ConnectionRecord) {
    this.dirty.conn(appId, conn.connectionId);
  }

  /**
   * Hands out the effects, stamping each membership and entry signal with the
   * next version, so a receiver can tell which of them a member list has.
   */
  private flush(): PresenceEffect[] {
    const effects = this.out;
    this.out = [];
    for (const e of effects) {
      if (e.to !== "channel") continue;
      if (e.signal.kind === "member" || e.signal.kind === "entry")
        e.signal.version = [this.epoch, ++this.stamped];
    }
    return effects;
  }

  private app(appId: string): AppState {
    let app = this.apps.get(appId);
    if (!app) {
      app = newAppState();
      this.apps.set(appId, app);
    }
    return app;
  }
}
