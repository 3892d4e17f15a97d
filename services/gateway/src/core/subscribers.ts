/**
 * A channel's subscribers on this gateway, by connection id, with a Map's
 * methods. Most channels have one subscriber (a channel per user, per DM,
 * per document): it is held inline, and a Map (a hash table of a few
 * hundred bytes) is made only for a second one. Iterating while entries are
 * deleted behaves as a Map's iteration does.
 */
export class Subscribers<T> {
  private oneId: string | undefined;
  private one: T | undefined;
  private many: Map<string, T> | undefined;

  get size(): number {
    if (this.many) return this.many.size;
    return this.oneId === undefined ? 0 : 1;
  }

  get(id: string): T | undefined {
    if (this.many) return this.many.get(id);
    return this.oneId === id ? this.one : undefined;
  }

  set(id: string, value: T): void {
    if (this.many) {
      this.many.set(id, value);
    } else if (this.oneId === undefined || this.oneId === id) {
      this.oneId = id;
      this.one = value;
    } else {
      this.many = new Map([[this.oneId, this.one as T]]);
      this.many.set(id, value);
      this.oneId = undefined;
      this.one = undefined;
    }
  }

  delete(id: string): boolean {
    if (this.many) return this.many.delete(id);
    if (this.oneId !== id) return false;
    this.oneId = undefined;
    this.one = undefined;
    return true;
  }

  clear(): void {
    this.many = undefined;
    this.oneId = undefined;
    this.one = undefined;
  }

  values(): Iterable<T> {
    if (this.many) return this.many.values();
    return this.oneId === undefined ? [] : [this.one as T];
  }
}
