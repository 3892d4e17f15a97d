/**
 * A set, one member held as is, a Set only from the second. Most of what a
 * connection or a channel keeps a set of has one member (a channel's
 * connection ids, the channels presence was told of, a live channel's
 * handlers), and a Set is a hash table of ~150 bytes even with one entry.
 * Members may be anything but `undefined`.
 */
export class SmallSet<T = string> {
  private one: T | undefined;
  private many: Set<T> | undefined;

  get size(): number {
    if (this.many) return this.many.size;
    return this.one === undefined ? 0 : 1;
  }

  add(member: T): void {
    if (this.many) this.many.add(member);
    else if (this.one === undefined || this.one === member) this.one = member;
    else {
      this.many = new Set([this.one, member]);
      this.one = undefined;
    }
  }

  delete(member: T): boolean {
    if (this.many) return this.many.delete(member);
    if (this.one !== member) return false;
    this.one = undefined;
    return true;
  }

  /** Iterates as a Set's `values()` does; with one member, a snapshot of it. */
  values(): Iterable<T> {
    if (this.many) return this.many.values();
    return this.one === undefined ? [] : [this.one];
  }
}
