/** A small typed event emitter: listeners per event name, `on` returns the remover. */
export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly listeners = new Map<keyof Events, Set<(...args: never[]) => unknown>>();

  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => unknown): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as (...args: never[]) => unknown);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: (...args: Events[K]) => unknown): void {
    this.listeners.get(event)?.delete(listener as (...args: never[]) => unknown);
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /**
   * Calls every listener; returns what they returned (promises included), so a
   * caller that must wait for handlers (at-least-once acks) can. A listener
   * that throws does not stop the others; its error is returned as a rejection.
   */
  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): unknown[] {
    const set = this.listeners.get(event);
    if (!set || set.size === 0) return [];
    const results: unknown[] = [];
    for (const l of [...set]) {
      try {
        results.push((l as (...a: Events[K]) => unknown)(...args));
      } catch (err) {
        results.push(Promise.reject(err));
      }
    }
    return results;
  }
}
