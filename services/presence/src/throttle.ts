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
  now: Date.now,
  // A pending count must not keep a process alive that is otherwise done.
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

interface Entry {
  sent: number;
  /** Latest count not yet sent, if different from `sent`. */
  pending?: number | undefined;
  /** Set while the interval after the last emission runs. */
  timer?: unknown;
}

export class CountThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly emit: (appId: string, channel: string, count: number) => void,
    private readonly intervalMs = 1000,
    private readonly timers: Timers = realTimers,
  ) {}

  /** Records the count a new owner starts from, so it is not announced again. */
  seed(appId: string, channel: string, count: number): void {
    const key = keyOf(appId, channel);
    if (!this.entries.has(key) && count > 0) this.entries.set(key, { sent: count });
  }

  update(appId: string, channel: string, count: number): void {
    const key = keyOf(appId, channel);
    const entry = this.entries.get(key) ?? { sent: 0 };
    this.entries.set(key, entry);
    if (entry.timer !== undefined) {
      entry.pending = count === entry.sent ? undefined : count;
      return;
    }
    if (count === entry.sent) {
      if (count === 0) this.entries.delete(key);
      return;
    }
    this.send(key, appId, channel, entry, count);
  }

  close(): void {
    for (const e of this.entries.values()) {
      if (e.timer !== undefined) this.timers.clearTimeout(e.timer);
    }
    this.entries.clear();
  }

  private send(key: string, appId: string, channel: string, entry: Entry, count: number): void {
    entry.sent = count;
    entry.pending = undefined;
    this.emit(appId, channel, count);
    entry.timer = this.timers.setTimeout(() => {
      entry.timer = undefined;
      if (entry.pending !== undefined) this.send(key, appId, channel, entry, entry.pending);
      // Keeping zero-count entries would leak one per channel ever used.
      else if (entry.sent === 0) this.entries.delete(key);
    }, this.intervalMs);
  }
}

function keyOf(appId: string, channel: string): string {
  return `${appId}\0${channel}`;
}
