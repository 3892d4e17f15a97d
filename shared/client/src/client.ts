import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
import { type ConnectionState, ConnectionStateMachine } from "./connection-state.js";
import { Emitter } from "./emitter.js";
import {
  AuthError,
  ClosedError,
  HeraldError,
  type QueueFullError,
  TidingsError,
} from "./errors.js";
import { OfflineQueue } from "./offline-queue.js";
import {
  clearTimer,
  globalWebSocket,
  OPEN,
  platformOnline,
  randomId,
  setTimer,
  type TimerHandle,
  type WebSocketConstructor,
  type WebSocketLike,
  watchBrowser,
} from "./platform.js";
import { Stream, type StreamHost, type StreamOptions } from "./stream.js";
import {
  type Frame,
  type Json,
  type PresenceChange,
  type PublishAck,
  parseFrame,
  type UserStatus,
} from "./wire.js";

/** A compact token with the user id and streams it was signed for, or a JWT. */
export type TokenGrant = string | { token: string; userId?: string; streams?: string[] };

export interface ClientOptions {
  /**
   * The Herald endpoint, e.g. `ws://localhost:6001/ws`: one URL, a list (each
   * connection attempt takes the next, so a dead gateway is skipped), or a
   * function of the attempt number.
   */
  url: string | string[] | ((attempt: number) => string | Promise<string>);
  /** The app key. */
  key: string;
  /**
   * Returns a token: called before every connection (first one, reconnects,
   * after an expired token) and on `system.token_expiring`. Throw an
   * `AuthError` to stop the client for good; any other error is retried with backoff.
   */
  token: () => TokenGrant | Promise<TokenGrant>;
  /** A WebSocket constructor; default: the global one (browsers, Node 22). Node 20: `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays: full jitter over min(maxMs, baseMs·2^attempt). */
  backoff?: Partial<BackoffOptions>;
  /** A connection up this long resets the backoff (default 10 000 ms). */
  stableAfterMs?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxRetries?: number;
  /** Publishes and other frames that may wait for a connection (default 1000). */
  maxQueued?: number;
  /** Publishes sent but not yet acknowledged at once (default 64). */
  maxInFlight?: number;
  /** Event ids remembered per stream for deduplication (default 1000). */
  dedupeCapacity?: number;
  /** Heartbeat `ping` interval (default 25 000 ms; 0 disables). */
  pingIntervalMs?: number;
  /** A ping unanswered this long, or auth_ok not within it, drops the connection (default 10 000 ms). */
  timeoutMs?: number;
  /** Connect in the constructor (default true); otherwise call `connect()`. */
  autoConnect?: boolean;
}

export interface ConnectedInfo {
  connection_id: string;
  user_id: string;
  streams: string[];
  expires_at: number;
  url: string;
}

export interface DisconnectedInfo {
  /** Why, in words: the close reason, the error, or "offline". */
  reason: string;
  /** The WebSocket close code, when there was one. */
  code?: number;
  willRetry: boolean;
  error?: Error;
}

export interface ClientEvents {
  state: [state: ConnectionState];
  connecting: [info: { attempt: number; url: string }];
  connected: [info: ConnectedInfo];
  reconnecting: [info: { attempt: number; delay: number }];
  disconnected: [info: DisconnectedInfo];
  closed: [info: { reason: string; error?: Error }];
  /** Problems not tied to a stream or request: token callback failures, unsolicited errors. */
  error: [error: Error];
  /** A user's status changed (co-members and watchers get these). */
  presence: [change: PresenceChange];
  /** A user on the token's watchlist came online or went offline. */
  watchlist: [change: { user_id: string; online: boolean }];
  tokenExpiring: [info: { expires_at: number }];
}

interface PendingPublish {
  ref: string;
  /** The exact frame text: a resend must be byte-for-byte the same to be recognised. */
  text: string;
  resolve: (ack: PublishAck) => void;
  reject: (err: Error) => void;
}

interface PendingRequest {
  ref: string;
  text: string;
  resolve: (f: Frame) => void;
  reject: (err: Error) => void;
}

interface QueuedFrame {
  stream: Stream | undefined;
  type: string;
  payload: Record<string, unknown>;
}

/** Close codes of Herald (services/gateway/src/dialects/herald/codes.ts). */
const AUTH_FAILED = 4001;
const NORMAL = 1000;
/** RFC 6455 "message too big": the gateway read a frame far over its limit and closed. */
const TOO_BIG = 1009;

/**
 * A Herald client: one connection (replaced on loss or token refresh), the
 * streams subscribed through it, publishes that survive reconnects.
 */
export class TidingsClient extends Emitter<ClientEvents> {
  private readonly opts: Required<Omit<ClientOptions, "backoff" | "WebSocket" | "maxRetries">> & {
    backoff: BackoffOptions;
    maxRetries: number;
  };
  private readonly WS: WebSocketConstructor;
  private readonly machine = new ConnectionStateMachine();
  /** Refs must never repeat across clients, reconnects or page loads (publish dedupe). */
  private readonly refPrefix = randomId(8);
  private refCounter = 0;
  private ws: WebSocketLike | undefined;
  /** A replacement connection opened for a token refresh, not yet authenticated. */
  private candidate: WebSocketLike | undefined;
  private attempt = 0;
  private authFailures = 0;
  private retryTimer: TimerHandle | undefined;
  private stableTimer: TimerHandle | undefined;
  private pingTimer: TimerHandle | undefined;
  private pongTimer: TimerHandle | undefined;
  private authTimer: TimerHandle | undefined;
  private lastError: Error | undefined;
  /** Close the socket that is in use now with this reason, recorded for `disconnected`. */
  private dropReason: string | undefined;
  private expiredClose = false;
  private waitingForOnline = false;
  private readonly streams = new Map<string, Stream>();
  private readonly subscribeRefs = new Map<string, Stream>();
  private readonly requestStreams = new Map<string, Stream>();
  private readonly inFlight = new Map<string, PendingPublish>();
  private readonly publishQueue: OfflineQueue<PendingPublish>;
  private readonly outbox: OfflineQueue<QueuedFrame>;
  private readonly requests = new Map<string, PendingRequest>();
  private pingRef: string | undefined;
  private status: UserStatus | undefined;
  private unwatchBrowser: () => void = () => {};
  private urlIndex = 0;
  /** The grant of the connection in use: whose user id stream listeners compare against. */
  info: ConnectedInfo | undefined;

  constructor(options: ClientOptions) {
    super();
    const WS = options.WebSocket ?? globalWebSocket();
    if (!WS) {
      throw new TidingsError(
        'no WebSocket: pass `WebSocket` (in Node 20: `import WebSocket from "ws"`)',
      );
    }
    this.WS = WS;
    this.opts = {
      url: options.url,
      key: options.key,
      token: options.token,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      stableAfterMs: options.stableAfterMs ?? 10_000,
      maxRetries: options.maxRetries ?? Number.POSITIVE_INFINITY,
      maxQueued: options.maxQueued ?? 1000,
      maxInFlight: options.maxInFlight ?? 64,
      dedupeCapacity: options.dedupeCapacity ?? 1000,
      pingIntervalMs: options.pingIntervalMs ?? 25_000,
      timeoutMs: options.timeoutMs ?? 10_000,
      autoConnect: options.autoConnect ?? true,
    };
    this.publishQueue = new OfflineQueue(this.opts.maxQueued);
    this.outbox = new OfflineQueue(this.opts.maxQueued);
    if (this.opts.autoConnect) this.connect();
  }

  get state(): ConnectionState {
    return this.machine.state;
  }

  get connected(): boolean {
    return this.machine.state === "connected";
  }

  /** Publishes waiting for an acknowledgement (sent or queued). */
  get pendingPublishes(): number {
    return this.inFlight.size + this.publishQueue.size;
  }

  /** Starts connecting (only needed with `autoConnect: false`). */
  connect(): void {
    if (this.machine.state !== "idle") return;
    this.unwatchBrowser = watchBrowser({
      online: () => this.browserOnline(),
      offline: () => this.browserOffline(),
      visible: () => this.retryNow(),
    });
    if (!platformOnline()) {
      this.move("disconnected");
      this.waitingForOnline = true;
      this.emit("disconnected", { reason: "offline", willRetry: true });
      return;
    }
    // Deferred, so listeners added right after the constructor see `connecting`.
    void Promise.resolve().then(() => {
      if (this.machine.state === "idle") void this.open();
    });
  }

  /**
   * The subscription to `streamId` (one per stream and client; asking again
   * returns the same object). It subscribes as soon as the client is connected.
   */
  subscribe(streamId: string, options: StreamOptions = {}): Stream {
    this.assertOpen();
    const existing = this.streams.get(streamId);
    if (existing && existing.status !== "unsubscribed" && existing.status !== "failed") {
      return existing;
    }
    const stream = new Stream(
      streamId,
      this.host,
      options,
      this.opts.dedupeCapacity,
      () => this.info?.user_id,
    );
    this.streams.set(streamId, stream);
    if (this.connected) this.sendSubscribe(stream);
    return stream;
  }

  /** Publishes without subscribing (the token must grant the stream). */
  publish(
    streamId: string,
    type: string,
    body: Json,
    meta?: { [key: string]: Json },
  ): Promise<PublishAck> {
    return this.host.publish(streamId, type, body, meta);
  }

  /** Sets this user's status (kept across reconnects); `offline` hides a connected user. */
  setStatus(status: UserStatus): void {
    this.assertOpen();
    this.status = status;
    if (this.connected) this.sendFrame("presence.set", { status }, undefined);
  }

  /** Closes for good: pending publishes and requests reject with ClosedError. */
  close(): void {
    this.finish("closed by the application");
  }

  // ---- what streams use ----

  private readonly host: StreamHost = this.makeHost();

  private makeHost(): StreamHost {
    const client = this;
    return {
      get connected() {
        return client.connected;
      },
      sendEphemeral: (stream, type, payload) => {
        if (!this.connected) return false;
        this.sendFrame(type, payload, stream);
        return true;
      },
      sendDurable: (stream, type, payload) => {
        if (this.machine.state === "closed") throw new ClosedError("client is closed");
        if (this.connected) this.sendFrame(type, payload, stream);
        else this.outbox.push({ stream, type, payload });
      },
      request: (type, payload) => this.request(type, payload),
      publish: (streamId, type, body, meta) => this.enqueuePublish(streamId, type, body, meta),
      subscribe: (stream) => this.sendSubscribe(stream),
      unsubscribe: (stream) => {
        if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
        if (this.connected) this.sendFrame("unsubscribe", { stream_id: stream.id }, undefined);
      },
    };
  }

  private nextRef(): string {
    this.refCounter += 1;
    return `${this.refPrefix}-${this.refCounter}`;
  }

  private enqueuePublish(
    streamId: string,
    type: string,
    body: Json,
    meta: { [key: string]: Json } | undefined,
  ): Promise<PublishAck> {
    if (this.machine.state === "closed") return Promise.reject(new ClosedError("client is closed"));
    const ref = this.nextRef();
    const payload: Record<string, unknown> = { stream_id: streamId, type, body };
    if (meta !== undefined) payload.meta = meta;
    const text = JSON.stringify({ type: "event.publish", ref, payload });
    return new Promise<PublishAck>((resolve, reject) => {
      const p: PendingPublish = { ref, text, resolve, reject };
      if (this.connected && this.inFlight.size < this.opts.maxInFlight) this.sendPublish(p);
      else {
        try {
          this.publishQueue.push(p);
        } catch (err) {
          reject(err as QueueFullError);
        }
      }
    });
  }

  private sendPublish(p: PendingPublish): void {
    this.inFlight.set(p.ref, p);
    this.ws?.send(p.text);
  }

  private pumpPublishes(): void {
    if (!this.connected) return;
    const waiting = this.publishQueue.drain();
    let sent = 0;
    for (const p of waiting) {
      if (this.inFlight.size >= this.opts.maxInFlight) break;
      this.sendPublish(p);
      sent++;
    }
    this.publishQueue.unshiftAll(waiting.slice(sent));
  }

  private request(type: string, payload: Record<string, unknown>): Promise<Frame> {
    if (this.machine.state === "closed") return Promise.reject(new ClosedError("client is closed"));
    const ref = this.nextRef();
    const text = JSON.stringify({ type, ref, payload });
    return new Promise<Frame>((resolve, reject) => {
      this.requests.set(ref, { ref, text, resolve, reject });
      if (this.connected) this.ws?.send(text);
    });
  }

  private sendFrame(type: string, payload: Record<string, unknown>, stream: Stream | undefined) {
    const ref = this.nextRef();
    if (stream) this.requestStreams.set(ref, stream);
    this.ws?.send(JSON.stringify({ type, ref, payload }));
  }

  private sendSubscribe(stream: Stream): void {
    const payload = stream.subscribePayload();
    if (!payload || !this.ws) return;
    const ref = this.nextRef();
    this.subscribeRefs.set(ref, stream);
    this.ws.send(JSON.stringify({ type: "subscribe", ref, payload }));
  }

  // ---- connection ----

  private move(to: ConnectionState): void {
    this.machine.go(to);
    this.emit("state", to);
  }

  private async nextUrl(): Promise<string> {
    const u = this.opts.url;
    if (typeof u === "function") return u(this.attempt);
    if (typeof u === "string") return u;
    const url = u[this.urlIndex % u.length];
    if (url === undefined) throw new TidingsError("url list is empty");
    this.urlIndex += 1;
    return url;
  }

  private async socketUrl(): Promise<string> {
    const base = await this.nextUrl();
    const grant = await this.opts.token();
    const g = typeof grant === "string" ? { token: grant } : grant;
    const q: string[] = [`key=${encodeURIComponent(this.opts.key)}`];
    if (g.userId !== undefined) q.push(`user_id=${encodeURIComponent(g.userId)}`);
    if (g.streams !== undefined) q.push(`streams=${encodeURIComponent(g.streams.join(","))}`);
    q.push(`token=${encodeURIComponent(g.token)}`);
    return `${base}${base.includes("?") ? "&" : "?"}${q.join("&")}`;
  }

  private async open(): Promise<void> {
    this.move("connecting");
    let url: string;
    try {
      url = await this.socketUrl();
    } catch (err) {
      if (this.machine.state !== "connecting") return;
      const error = err instanceof Error ? err : new Error(String(err));
      this.emit("error", error);
      return this.lost(
        { reason: `token or url failed: ${error.message}`, error },
        !(err instanceof AuthError),
      );
    }
    if (this.machine.state !== "connecting") return;
    this.emit("connecting", { attempt: this.attempt, url: url.replace(/[?].*$/, "") });
    let ws: WebSocketLike;
    try {
      ws = new this.WS(url);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      return this.lost({ reason: `cannot open WebSocket: ${error.message}`, error }, true);
    }
    this.ws = ws;
    this.attach(ws, url);
    this.authTimer = setTimer(() => {
      if (this.ws === ws && !this.connected) this.drop(ws, "no auth_ok in time");
    }, this.opts.timeoutMs);
  }

  private attach(ws: WebSocketLike, url: string): void {
    const base = url.replace(/[?].*$/, "");
    ws.onmessage = (ev) => {
      if (ws !== this.ws && ws !== this.candidate) return;
      const f = parseFrame(ev.data);
      if (f) this.onFrame(ws, f, base);
    };
    ws.onclose = (ev) => this.onSocketClose(ws, ev.code, ev.reason);
    ws.onerror = () => {
      // Always followed by close; the close carries what we act on.
    };
  }

  private onFrame(ws: WebSocketLike, f: Frame, url: string): void {
    const p = f.payload;
    if (ws === this.candidate) {
      // A refresh connection only matters once it is authenticated.
      if (f.type === "auth_ok") this.swapTo(ws, p, url);
      return;
    }
    this.resetPongTimer();
    switch (f.type) {
      case "auth_ok":
        this.authenticated(p, url);
        return;
      case "auth_error":
        this.lastError = new AuthError(String(p.message ?? "auth failed"));
        return;
      case "system.token_expiring":
        this.emit("tokenExpiring", { expires_at: Number(p.expires_at) });
        void this.refresh();
        return;
      case "pong":
        return;
      case "event.ack":
        this.onPublishAck(f);
        return;
      case "subscribed": {
        const stream = this.subscribeRefs.get(String(f.ref));
        this.subscribeRefs.delete(String(f.ref));
        stream?.onSubscribed(p);
        return;
      }
      case "events.batch": {
        const r = this.requests.get(String(f.ref));
        this.requests.delete(String(f.ref));
        r?.resolve(f);
        return;
      }
      case "error":
        this.onError(f);
        return;
      case "presence.changed": {
        const change = p as unknown as PresenceChange;
        for (const s of this.streams.values()) s.onPresence(change);
        this.emit("presence", change);
        return;
      }
      case "watchlist.online":
      case "watchlist.offline":
        this.emit("watchlist", {
          user_id: String(p.user_id),
          online: f.type === "watchlist.online",
        });
        return;
    }
    if (typeof p.stream_id === "string") this.streams.get(p.stream_id)?.onFrame(f);
  }

  private onPublishAck(f: Frame): void {
    const ref = String(f.ref);
    const pending = this.inFlight.get(ref);
    if (!pending) return;
    this.inFlight.delete(ref);
    pending.resolve({ event_id: String(f.payload.event_id), seq: Number(f.payload.seq) });
    this.pumpPublishes();
  }

  private onError(f: Frame): void {
    const code = String(f.payload.code ?? "internal");
    const message = String(f.payload.message ?? "");
    const ref = f.ref === undefined ? undefined : String(f.ref);
    if (ref !== undefined) {
      const publish = this.inFlight.get(ref);
      if (publish) {
        this.inFlight.delete(ref);
        const err = new HeraldError(code, message);
        if (err.retryable) {
          // Storage briefly unavailable or the rate limit hit: the same ref again later is safe.
          setTimer(() => {
            if (this.machine.state === "closed")
              return publish.reject(new ClosedError("client is closed"));
            this.publishQueue.unshiftAll([publish]);
            this.pumpPublishes();
          }, 1000);
        } else publish.reject(err);
        this.pumpPublishes();
        return;
      }
      const sub = this.subscribeRefs.get(ref);
      if (sub) {
        this.subscribeRefs.delete(ref);
        const err = new HeraldError(code, message, sub.id);
        sub.onSubscribeError(err);
        if (!err.retryable || sub.status === "failed") return;
        setTimer(() => {
          if (this.connected && this.streams.get(sub.id) === sub) this.sendSubscribe(sub);
        }, 1000);
        return;
      }
      const req = this.requests.get(ref);
      if (req) {
        this.requests.delete(ref);
        req.reject(new HeraldError(code, message));
        return;
      }
      const stream = this.requestStreams.get(ref);
      if (stream) {
        this.requestStreams.delete(ref);
        stream.onRequestError(new HeraldError(code, message, stream.id));
        return;
      }
    }
    if (code === "auth_failed") {
      // "token expired" comes just before the 4001 close; a fresh token fixes it.
      this.expiredClose = /expired/.test(message);
      this.lastError = new AuthError(message);
      return;
    }
    const blocked = code === "blocked" ? /stream (\S+)$/.exec(message)?.[1] : undefined;
    const stream = blocked === undefined ? undefined : this.streams.get(blocked);
    const err = new HeraldError(code, message, stream?.id);
    if (stream) stream.onRequestError(err);
    else this.emit("error", err);
  }

  private authenticated(p: Record<string, unknown>, url: string): void {
    clearTimer(this.authTimer);
    this.authFailures = 0;
    this.lastError = undefined;
    this.expiredClose = false;
    this.info = {
      connection_id: String(p.connection_id),
      user_id: String(p.user_id),
      streams: (p.streams as string[]) ?? [],
      expires_at: Number(p.expires_at),
      url,
    };
    this.move("connected");
    this.stableTimer = setTimer(() => {
      this.attempt = 0;
    }, this.opts.stableAfterMs);
    this.schedulePing();
    this.emit("connected", this.info);
    this.resume();
  }

  /** After every new connection: streams first, then what waited, in order. */
  private resume(): void {
    this.subscribeRefs.clear();
    this.requestStreams.clear();
    for (const s of this.streams.values()) this.sendSubscribe(s);
    if (this.status !== undefined)
      this.sendFrame("presence.set", { status: this.status }, undefined);
    // Publishes that were sent but not acked go first, with their original ref and bytes.
    const unacked = [...this.inFlight.values()];
    this.inFlight.clear();
    this.publishQueue.unshiftAll(unacked);
    this.pumpPublishes();
    for (const r of this.requests.values()) this.ws?.send(r.text);
    for (const q of this.outbox.drain()) this.sendFrame(q.type, q.payload, q.stream);
  }

  /**
   * Herald has no in-band re-auth: a fresh token means a fresh connection.
   * Open it beside the current one and switch once it is authenticated, so
   * the app sees no disconnect; replay with last_seq and event-id dedupe make
   * the seam lossless and duplicate-free.
   */
  private async refresh(): Promise<void> {
    if (this.candidate || !this.connected) return;
    let url: string;
    try {
      url = await this.socketUrl();
    } catch (err) {
      this.emit("error", err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (!this.connected || this.candidate) return;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(url);
    } catch (err) {
      this.emit("error", err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.candidate = ws;
    this.attach(ws, url);
  }

  private swapTo(ws: WebSocketLike, p: Record<string, unknown>, url: string): void {
    const old = this.ws;
    this.candidate = undefined;
    this.ws = ws;
    if (old) {
      detach(old);
      old.close(NORMAL, "token refreshed");
    }
    this.stopPing();
    this.info = {
      connection_id: String(p.connection_id),
      user_id: String(p.user_id),
      streams: (p.streams as string[]) ?? [],
      expires_at: Number(p.expires_at),
      url,
    };
    this.schedulePing();
    this.emit("connected", this.info);
    this.resume();
  }

  private onSocketClose(ws: WebSocketLike, code: number, reason: string): void {
    if (ws === this.candidate) {
      this.candidate = undefined;
      return;
    }
    if (ws !== this.ws) return;
    this.ws = undefined;
    if (code === TOO_BIG) this.rejectLargestPublish();
    const dropped = this.dropReason;
    this.dropReason = undefined;
    const text = dropped ?? (reason || this.lastError?.message || `closed (${code})`);
    this.lost({ reason: text, code, error: this.lastError }, this.shouldRetry(code));
  }

  /**
   * Resending the frame that got the connection closed would close the next
   * one too, forever. The gateway does not say which frame it was; the
   * largest one in flight is the one that can be over the limit.
   */
  private rejectLargestPublish(): void {
    let largest: PendingPublish | undefined;
    for (const p of this.inFlight.values()) {
      if (!largest || p.text.length > largest.text.length) largest = p;
    }
    if (!largest) return;
    this.inFlight.delete(largest.ref);
    largest.reject(
      new HeraldError("invalid_payload", `frame too large (${largest.text.length} characters)`),
    );
  }

  /** Whether a close is worth reconnecting after. */
  private shouldRetry(code: number): boolean {
    if (code !== AUTH_FAILED) return true;
    if (this.expiredClose) return true;
    if (this.lastError?.message === "unknown key") return false;
    // One refusal may be a token that expired on the way; the fresh one is refused too → stop.
    this.authFailures += 1;
    return this.authFailures < 2;
  }

  /** The connection is gone (or never came): say so and plan the next attempt. */
  private lost(info: Omit<DisconnectedInfo, "willRetry">, retryable: boolean): void {
    clearTimer(this.authTimer);
    clearTimer(this.stableTimer);
    this.stopPing();
    if (this.candidate) {
      detach(this.candidate);
      this.candidate.close(NORMAL, "replaced");
      this.candidate = undefined;
    }
    this.info = undefined;
    // Ping waits for a pong on the dead socket; the rest is resent after reconnect.
    this.pingRef = undefined;
    if (this.machine.state === "closed") return;
    const exhausted = this.attempt >= this.opts.maxRetries;
    const willRetry = retryable && !exhausted;
    const error =
      info.error ??
      (!retryable && info.code === AUTH_FAILED
        ? new AuthError(`credentials refused: ${info.reason}`)
        : undefined);
    this.move("disconnected");
    this.emit("disconnected", { ...info, willRetry, ...(error ? { error } : {}) });
    if (!willRetry) {
      const final =
        error ??
        new TidingsError(exhausted ? `gave up after ${this.attempt} attempts` : info.reason);
      this.finish(info.reason, final);
      return;
    }
    // An expired token is not a failure of the server: come back at once with a fresh one.
    const immediate = this.expiredClose || (info.code === AUTH_FAILED && this.authFailures === 1);
    this.expiredClose = false;
    this.scheduleRetry(immediate);
  }

  private scheduleRetry(immediate: boolean): void {
    if (!platformOnline()) {
      this.waitingForOnline = true;
      return;
    }
    const delay = immediate ? 0 : backoffDelay(this.attempt, this.opts.backoff);
    this.attempt += 1;
    this.move("reconnecting");
    this.emit("reconnecting", { attempt: this.attempt, delay });
    this.retryTimer = setTimer(() => {
      this.retryTimer = undefined;
      if (this.machine.state === "reconnecting") void this.open();
    }, delay);
  }

  /** Tab visible again or network back: skip the rest of the backoff. */
  private retryNow(): void {
    if (this.machine.state !== "reconnecting" || this.retryTimer === undefined) return;
    clearTimer(this.retryTimer);
    this.retryTimer = undefined;
    void this.open();
  }

  private browserOnline(): void {
    if (this.waitingForOnline && this.machine.state === "disconnected") {
      this.waitingForOnline = false;
      void this.open();
    } else this.retryNow();
  }

  private browserOffline(): void {
    if (this.machine.state === "reconnecting") {
      clearTimer(this.retryTimer);
      this.retryTimer = undefined;
      this.move("disconnected");
      this.emit("disconnected", { reason: "offline", willRetry: true });
      this.waitingForOnline = true;
      return;
    }
    // The socket may look open for a long time on a dead network; don't wait for it.
    if (this.ws) this.drop(this.ws, "offline");
  }

  /** Gives up on a socket now (no close handshake wait) and reports it lost. */
  private drop(ws: WebSocketLike, reason: string): void {
    if (ws !== this.ws) return;
    this.dropReason = reason;
    detach(ws);
    try {
      ws.close(NORMAL, reason);
    } catch {
      // Closing a socket still connecting throws in some implementations; it is abandoned anyway.
    }
    this.onSocketClose(ws, 0, reason);
  }

  private schedulePing(): void {
    if (this.opts.pingIntervalMs <= 0) return;
    clearTimer(this.pingTimer);
    this.pingTimer = setTimer(() => {
      const ws = this.ws;
      if (!ws || !this.connected || ws.readyState !== OPEN) return;
      this.pingRef = this.nextRef();
      ws.send(JSON.stringify({ type: "ping", ref: this.pingRef, payload: {} }));
      this.pongTimer = setTimer(() => this.drop(ws, "ping timeout"), this.opts.timeoutMs);
      this.schedulePing();
    }, this.opts.pingIntervalMs);
  }

  /** Any frame proves the connection alive. */
  private resetPongTimer(): void {
    clearTimer(this.pongTimer);
    this.pongTimer = undefined;
  }

  private stopPing(): void {
    clearTimer(this.pingTimer);
    clearTimer(this.pongTimer);
    this.pingTimer = this.pongTimer = undefined;
  }

  private finish(reason: string, error?: Error): void {
    if (this.machine.state === "closed") return;
    clearTimer(this.retryTimer);
    clearTimer(this.authTimer);
    clearTimer(this.stableTimer);
    this.stopPing();
    this.unwatchBrowser();
    for (const s of this.streams.values()) s.dispose();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      detach(ws);
      ws.close(NORMAL, "client closed");
    }
    if (this.candidate) {
      detach(this.candidate);
      this.candidate.close(NORMAL, "client closed");
      this.candidate = undefined;
    }
    this.move("closed");
    const closed = new ClosedError(error ? `client closed: ${error.message}` : "client closed");
    for (const p of [...this.inFlight.values(), ...this.publishQueue.drain()]) p.reject(closed);
    this.inFlight.clear();
    for (const r of this.requests.values()) r.reject(closed);
    this.requests.clear();
    this.outbox.drain();
    this.emit("closed", { reason, ...(error ? { error } : {}) });
  }

  private assertOpen(): void {
    if (this.machine.state === "closed") throw new ClosedError("client is closed");
  }
}

function detach(ws: WebSocketLike): void {
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = () => {};
  ws.onopen = null;
}
