import { TimeoutError } from "@nats-io/nats-core";

/** What waits for an answer on a shared inbox. */
export interface Waiter {
  deadline: number;
  reject(err: Error): void;
}

/**
 * The answers awaited on one shared inbox (`requests.ts`, `js-pull.ts`),
 * by key, with one timer for all their deadlines instead of one each. Every
 * waiter has the same timeout, so insertion order is deadline order: the
 * sweep stops at the first one still in time and rejects the rest with the
 * `TimeoutError` nats.js's own requests give. The timer runs only while
 * something waits.
 */
export class Awaiting<K, W extends Waiter> {
  private readonly waiting = new Map<K, W>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly timeoutMs: number) {}

  get size(): number {
    return this.waiting.size;
  }

  has(key: K): boolean {
    return this.waiting.has(key);
  }

  get(key: K): W | undefined {
    return this.waiting.get(key);
  }

  /** The waiter's deadline is set here, from the timeout. */
  add(key: K, waiter: W): void {
    waiter.deadline = Date.now() + this.timeoutMs;
    this.waiting.set(key, waiter);
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(10, this.timeoutMs / 20));
    this.sweeper.unref();
  }

  /** Removes and returns the key's waiter, if it still waits. */
  take(key: K): W | undefined {
    const w = this.waiting.get(key);
    if (!w) return undefined;
    this.waiting.delete(key);
    if (this.waiting.size === 0) this.stopSweeper();
    return w;
  }

  /** Rejects every waiter with `err`. */
  rejectAll(err: Error): void {
    this.stopSweeper();
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, w] of this.waiting) {
      if (w.deadline > now) break;
      this.take(key);
      w.reject(new TimeoutError());
    }
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}
