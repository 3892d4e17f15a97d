/**
 * A set of strings, one held as is, a Set only from the second. Most of
 * what a connection or a channel keeps a set of has one member (a channel's
 * connection ids, the channels presence was told of), and a Set is a hash
 * table of ~150 bytes even with one entry.
 */
export class SmallSet {
  private one: string | undefined;
  private many: Set<string> | undefined;

  get size(): number {
    if (this.many) return this.many.size;
    return this.one === undefined ? 0 : 1;
  }

  add(id: string): void {
    if (this.many) this.many.add(id);
    else if (this.one === undefined || this.one === id) this.one = id;
    else {
      this.many = new Set([this.one, id]);
      this.one = undefined;
    }
  }

  delete(id: string): boolean {
    if (this.many) return this.many.delete(id);
    if (this.one !== id) return false;
    this.one = undefined;
    return true;
  }
}
