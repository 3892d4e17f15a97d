/**
 * Subscriber counts change with every subscribe; clients only need the
 * latest value, at most once per interval per channel. The first change
 * after a quiet interval goes out at once; changes within the interval are
 * coalesced into one trailing emission of the latest count (skipped if it
 * ended where it started).
 */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  // Monotonic: intervals are measured, and a wall clock may step.
  now: () => performance.now(),
  // A pending count must not keep a process alive that is otherwise done.
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** A channel whose interval runs: at most one per channel, queued in emission order. */
interface Running {
  appId: string;
  channel: string;
  /** The count last sent. */
  sent: number;
  /** Latest count not yet sent, if different from `sent`. */
  pending: number | undefined;
  /** When the interval after the last emission ends. */
  until: number;
  next: Running | undefined;
}

/**
 * Every channel's interval is as long, so emission order is expiry order:
 * one queue and one timer for the queue's head serve all channels, where a
 * timer per emission (a Timeout, a closure and its context, each living a
 * whole interval) cost every new channel of a connect storm ~200 B of
 * garbage old enough to be promoted. A quiet channel keeps only the count it
 * last sent, as a number.
 */
export class CountThrottle {
  /** By app, then channel: the count last sent (quiet), or the running interval. */
  private readonly apps = new Map<string, Map<string, number | Running>>();
  private head: Running | undefined;
  private tail: Running | undefined;
  private timer: unknown;
  /** Set while `expire` runs: it arms the timer once, for the queue it leaves. */
  private expiring = false;

  constructor(
    private readonly emit: (appId: string, channel: string, count: number) => void,
    private readonly intervalMs = 1000,
    private readonly timers: Timers = realTimers,
  ) {}

  /** Records the count a new owner starts from, so it is not announced again. */
  seed(appId: string, channel: string, count: number): void {
    if (count <= 0) return;
    const channels = this.channels(appId);
    if (!channels.has(channel)) channels.set(channel, count);
  }

  update(appId: string, channel: string, count: number): void {
    const channels = this.channels(appId);
    const state = channels.get(channel);
    if (typeof state === "object") {
      state.pending = count === state.sent ? undefined : count;
      return;
    }
    if (count !== (state ?? 0)) this.send(channels, appId, channel, count);
    else if (count === 0) this.forget(channels, appId, channel);
  }

  close(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.head = this.tail = undefined;
    this.apps.clear();
  }

  private channels(appId: string): Map<string, number | Running> {
    let channels = this.apps.get(appId);
    if (!channels) {
      channels = new Map();
      this.apps.set(appId, channels);
    }
    return channels;
  }

  /** Keeping zero counts would leak an entry per channel ever used. */
  private forget(channels: Map<string, number | Running>, appId: string, channel: string): void {
    channels.delete(channel);
    if (channels.size === 0) this.apps.delete(appId);
  }

  private send(
    channels: Map<string, number | Running>,
    appId: string,
    channel: string,
    count: number,
  ): void {
    const running: Running = {
      appId,
      channel,
      sent: count,
      pending: undefined,
      until: this.timers.now() + this.intervalMs,
      next: undefined,
    };
    channels.set(channel, running);
    if (this.tail) this.tail.next = running;
    else this.head = running;
    this.tail = running;
    if (this.timer === undefined && !this.expiring) this.arm();
    // Last: with the memory engine the signal is delivered synchronously, and
    // what it causes (a slow consumer closed, so its subscription counted
    // out) may update this channel again. That update must find this
    // interval running and become its trailing send.
    this.emit(appId, channel, count);
  }

  private arm(): void {
    const head = this.head;
    if (!head) return;
    this.timer = this.timers.setTimeout(
      () => this.expire(),
      Math.max(0, head.until - this.timers.now()),
    );
  }

  /** Ends every interval that is over: the trailing emission, if any, starts the next. */
  private expire(): void {
    this.timer = undefined;
    this.expiring = true;
    const now = this.timers.now();
    for (let r = this.head; r && r.until <= now; r = this.head) {
      this.head = r.next;
      if (!this.head) this.tail = undefined;
      r.next = undefined;
      const channels = this.apps.get(r.appId);
      if (channels?.get(r.channel) !== r) continue;
      if (r.pending !== undefined) this.send(channels, r.appId, r.channel, r.pending);
      else if (r.sent === 0) this.forget(channels, r.appId, r.channel);
      else channels.set(r.channel, r.sent);
    }
    this.expiring = false;
    this.arm();
  }
}
