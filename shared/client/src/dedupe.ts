/**
 * The event ids seen most recently, at most `capacity` of them: the oldest
 * is forgotten first. Replays after a reconnect overlap with what was
 * delivered only near the end, so a bounded window is enough.
 */
export class DedupeWindow {
  private readonly ids = new Set<string>();

  constructor(readonly capacity = 1000) {
    if (!(capacity >= 1)) throw new RangeError("dedupe capacity must be at least 1");
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Records `id`; false if it was already there. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    // Sets iterate in insertion order, so the first key is the oldest.
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }

  delete(id: string): void {
    this.ids.delete(id);
  }

  clear(): void {
    this.ids.clear();
  }

  get size(): number {
    return this.ids.size;
  }
}
