import { QueueFullError } from "./errors.js";

/**
 * Items waiting for a connection, in order, at most `capacity`. A full queue
 * refuses at once with QueueFullError instead of growing without bound while
 * a client is offline.
 */
export class OfflineQueue<T> {
  private items: T[] = [];

  constructor(readonly capacity: number) {
    if (!(capacity >= 0)) throw new RangeError("queue capacity must be non-negative");
  }

  push(item: T): void {
    if (this.items.length >= this.capacity) {
      throw new QueueFullError(
        `offline queue full (${this.capacity} waiting for a connection); retry later`,
      );
    }
    this.items.push(item);
  }

  /** Removes and returns everything, oldest first. */
  drain(): T[] {
    const all = this.items;
    this.items = [];
    return all;
  }

  /** Puts items back in front, past the capacity if need be: they were accepted before. */
  unshiftAll(items: T[]): void {
    if (items.length > 0) this.items = [...items, ...this.items];
  }

  remove(pred: (item: T) => boolean): void {
    this.items = this.items.filter((i) => !pred(i));
  }

  get size(): number {
    return this.items.length;
  }
}
