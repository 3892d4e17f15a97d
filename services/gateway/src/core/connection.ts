import type { WebSocket } from "uWebSockets.js";
import { randomInt } from "node:crypto";
import type { AppConfig } from "../../../../shared/src/config/apps.js";
import type { Logger } from "../../../../shared/src/log.js";
import type { KeepalivePolicy } from "./keepalive.js";
import { TokenBucket } from "./rate.js";
import type { Session } from "./session.js";

/** What uWS keeps per socket: only a pointer to our Connection. */
export interface SocketData {
  conn?: Connection;
  upgrade: UpgradeInfo;
}

/** Everything copied out of the upgrade request (uWS forbids touching it later). */
export interface UpgradeInfo {
  /**
   * The URL's query, for the dialect's `open` only: the server drops it right
   * after (a connection's bytes; nothing reads it later).
   */
  query: URLSearchParams | undefined;
  /** Route parameter (app key for /app/:key, /chat/:key, /broadcaster/:key). */
  param: string;
  origin: string;
  remoteAddress: string;
  /** App resolved at upgrade when the URL names it. */
  app: AppConfig | undefined;
}

/** Each half of a connection id is below this: 12 digits, what Pusher's HTTP API accepts. */
const ID_PART_BOUND = 1e12;

/**
 * A connection id in Pusher's socket id form (`\d+\.\d+`, which pusher-js
 * and the server SDKs check): two crypto-random integers, about 80 bits, so
 * ids are unique across a cluster with overwhelming probability and cannot
 * be guessed from one's own. Apps derive things from socket ids, and a
 * guessable one makes `socket_id` exclusion and channel or user signatures
 * for another connection easier to come by. Each half stays a safe integer
 * for tools that parse it as a number. Nothing may read meaning into an id:
 * presence tracks the gateway of a connection separately.
 */
export function nextConnectionId(): string {
  return `${randomInt(1, ID_PART_BOUND)}.${randomInt(1, ID_PART_BOUND)}`;
}

/** Open connections per app on this gateway, for the app's connection limit. */
export class AppQuota {
  private readonly counts = new Map<string, number>();

  tryAdd(app: AppConfig): boolean {
    const n = this.counts.get(app.id) ?? 0;
    if (n >= app.limits.maxConnections) return false;
    this.counts.set(app.id, n + 1);
    return true;
  }

  remove(app: AppConfig): void {
    const n = (this.counts.get(app.id) ?? 1) - 1;
    if (n <= 0) this.counts.delete(app.id);
    else this.counts.set(app.id, n);
  }
}

/**
 * One client connection, dialect-agnostic. The dialect adapter owns the
 * meaning of frames; this owns the socket, limits and bookkeeping.
 */
export class Connection {
  readonly id = nextConnectionId();
  app: AppConfig | undefined;
  userId: string | undefined;
  /** The core session, once the dialect bound the connection to its app (`Sessions.bind`). */
  session: Session | undefined;
  /**
   * Channels subscribed to: one held as is, a Set only from the second, none
   * undefined. Most connections hold a channel or two; a Set is a hash table
   * of a few hundred bytes.
   */
  private joined: string | Set<string> | undefined;
  closed = false;
  /** A close was requested; uWS runs the close handler later. */
  ending = false;
  lastSeenAt = Date.now();
  /** The dialect's silence watch, run by the server's once-a-second sweep (see keepalive.ts). */
  keepalive: KeepalivePolicy | undefined;
  /** When the keep-alive probe (a ping) went out and no frame came since. */
  probedAt: number | undefined;
  private bucket: TokenBucket | undefined;
  private drainWaiters: (() => void)[] | undefined;
  /** Cleanup callbacks run once at close (timers, user subscriptions); made on first use. */
  private disposers: (() => void)[] | undefined;
  /** The parent logger; the per-connection child is made on first use (see `log`). */
  private readonly baseLog: Logger;
  private childLog: Logger | undefined;

  constructor(
    readonly ws: WebSocket<SocketData>,
    readonly dialect: string,
    readonly upgrade: UpgradeInfo,
    log: Logger,
    private readonly quota: AppQuota,
    /** One function shared by the dialect's connections (not a closure per socket). */
    private readonly onAppChange: (conn: Connection, app: AppConfig, delta: 1 | -1) => void,
  ) {
    this.baseLog = log;
  }

  /**
   * Channels this connection is subscribed to (managed by the hub:
   * `addChannel`, `removeChannel`), to iterate: with a single channel this is
   * a new Set each time, so ask `hasChannel` and `channelCount` on hot paths.
   */
  get channels(): ReadonlySet<string> {
    const j = this.joined;
    if (j === undefined) return NO_CHANNELS;
    return typeof j === "string" ? new Set([j]) : j;
  }

  hasChannel(channel: string): boolean {
    const j = this.joined;
    return typeof j === "string" ? j === channel : (j?.has(channel) ?? false);
  }

  get channelCount(): number {
    const j = this.joined;
    if (j === undefined) return 0;
    return typeof j === "string" ? 1 : j.size;
  }

  /** The hub's bookkeeping of a join. */
  addChannel(channel: string): void {
    const j = this.joined;
    if (j === undefined || j === channel) this.joined = channel;
    else if (typeof j === "string") this.joined = new Set([j, channel]);
    else j.add(channel);
  }

  /** The hub's bookkeeping of a leave; false when the connection was not subscribed. */
  removeChannel(channel: string): boolean {
    const j = this.joined;
    if (j === channel) {
      this.joined = undefined;
      return true;
    }
    if (typeof j !== "object" || !j.delete(channel)) return false;
    if (j.size === 0) this.joined = undefined;
    return true;
  }

  /**
   * A child logger carrying the connection's id, dialect, address and app.
   * Made lazily: most connections never log, and a pino child per socket is a
   * measurable share of a connection's memory.
   */
  get log(): Logger {
    this.childLog ??= this.baseLog.child({
      conn: this.id,
      dialect: this.dialect,
      remote: this.upgrade.remoteAddress,
      app: this.app?.id,
    });
    return this.childLog;
  }

  /**
   * Binds the connection to its app once known (URL or auth frame). False
   * when the app is at its connection limit; the dialect then refuses.
   */
  setApp(app: AppConfig): boolean {
    if (this.app) return this.app.id === app.id;
    if (!this.quota.tryAdd(app)) return false;
    this.app = app;
    this.bucket = new TokenBucket(app.limits.maxMessageRate, app.limits.maxMessageRate * 2);
    this.childLog = undefined;
    this.onAppChange(this, app, 1);
    return true;
  }

  /** Counts one inbound frame against the app's rate; false when over it. */
  allowMessage(): boolean {
    this.lastSeenAt = Date.now();
    return this.bucket ? this.bucket.take() : true;
  }

  /** Sends one text frame. Returns false if the connection is closed. */
  send(text: string): boolean {
    if (this.closed) return false;
    this.ws.send(text, false);
    return true;
  }

  /**
   * Runs `fn` with the socket corked, so the frames it sends go out in one
   * write. uWS corks its own callbacks only; a replay page arrives from a
   * NATS read, where each send would otherwise be a write of its own.
   */
  corked(fn: () => void): void {
    if (this.closed) return;
    this.ws.cork(fn);
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  /** Resolves once the socket's send buffer is below `bytes` (or it closed). */
  async waitForBuffer(bytes: number): Promise<void> {
    while (!this.closed && this.ws.getBufferedAmount() > bytes) {
      await new Promise<void>((resolve) => {
        this.drainWaiters ??= [];
        this.drainWaiters.push(resolve);
      });
    }
  }

  /** Called by the server on uWS `drain`. */
  drained(): void {
    const waiters = this.drainWaiters;
    if (!waiters) return;
    this.drainWaiters = undefined;
    for (const w of waiters) w();
  }

  onClose(fn: () => void): void {
    if (this.closed) {
      fn();
      return;
    }
    this.disposers ??= [];
    this.disposers.push(fn);
  }

  /** Closes with a WebSocket close code; the `close` handler does the cleanup. */
  close(code: number, message: string): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    try {
      this.ws.end(code, message.slice(0, 120));
    } catch (err) {
      // The socket may already be gone under us; the close handler still runs once.
      this.log.debug({ err }, "end on a closed socket");
    }
  }

  /** Run by the server's close handler exactly once. */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.drained();
    // The app's count first, as when it was the first cleanup registered (at `setApp`).
    if (this.app) {
      this.quota.remove(this.app);
      this.onAppChange(this, this.app, -1);
    }
    const disposers = this.disposers ?? [];
    this.disposers = undefined;
    for (const d of disposers) {
      try {
        d();
      } catch (err) {
        this.log.error({ err }, "close cleanup failed");
      }
    }
  }
}

/** What a connection with no subscription reports: one shared, never written. */
const NO_CHANNELS: ReadonlySet<string> = new Set<string>();
