/**
 * Partition leases in NATS KV. A replica owns partition `n` while it keeps
 * bumping the revision of `lease.<n>` by compare-and-set. NATS 2.9 has no
 * per-key TTL, so expiry is judged by the observer: a standby takes a lease
 * whose revision has not moved for `ttlMs` *as measured on its own clock*
 * (no clock agreement between replicas needed), again by CAS, so two
 * standbys can never both win.
 *
 * An owner that cannot renew for `fenceMs` (< ttlMs) gives the partition up
 * on its own, before anyone else may take it: at most one acts at a time.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "../../../shared/src/log.js";
import { leaseKey } from "../../../shared/src/presence/subjects.js";

export interface LeaseOptions {
  kv: KV;
  replicaId: string;
  partitions: number;
  ttlMs: number;
  log: Logger;
  /** `revision`: the lease's KV revision when taken, larger than any earlier owner's. */
  onAcquire(partition: number, revision: number): void;
  onLose(partition: number): void;
  now?: () => number;
}

interface Held {
  revision: number;
  renewedAt: number;
}

interface Seen {
  revision: number;
  since: number;
}

export class LeaseManager {
  private readonly held = new Map<number, Held>();
  private readonly seen = new Map<number, Seen>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: LeaseOptions) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    // Renew three times per TTL: one lost round trip does not cost the lease.
    const every = Math.max(50, Math.floor(this.o.ttlMs / 3));
    const tick = () => {
      this.running = this.round().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, every);
      });
    };
    tick();
  }

  owned(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** Stops renewing and deletes our leases so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const mine = [...this.held];
    this.held.clear();
    for (const [p] of mine) this.o.onLose(p);
    await Promise.all(
      mine.map(([p, h]) =>
        this.o.kv.delete(leaseKey(p), { previousSeq: h.revision }).catch((err: unknown) => {
          this.o.log.warn(
            { err, partition: p },
            "lease release failed; a standby waits out its TTL",
          );
        }),
      ),
    );
  }

  private async round(): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (let p = 0; p < this.o.partitions; p++) {
      jobs.push(this.held.has(p) ? this.renew(p) : this.tryAcquire(p));
    }
    await Promise.all(jobs);
  }

  private async renew(p: number): Promise<void> {
    const h = this.held.get(p);
    if (!h) return;
    try {
      h.revision = await this.o.kv.update(leaseKey(p), this.value(), h.revision);
      h.renewedAt = this.now();
    } catch (err) {
      // A CAS conflict means someone else holds it now; any other error may
      // be transient, but past the fence we can no longer be sure we own it.
      const conflict = isWrongRevision(err);
      if (conflict || this.now() - h.renewedAt > this.fenceMs()) {
        // Expected when NATS is away or another replica took over: no stack.
        const reason = err instanceof Error ? err.message : String(err);
        this.o.log.warn({ partition: p, conflict, reason }, "presence partition lease lost");
        this.lose(p);
      }
    }
  }

  private async tryAcquire(p: number): Promise<void> {
    if (this.stopped) return;
    const key = leaseKey(p);
    try {
      const entry = await this.o.kv.get(key);
      if (entry?.operation !== "PUT") {
        this.won(p, await this.o.kv.create(key, this.value()));
        return;
      }
      const now = this.now();
      const seen = this.seen.get(p);
      if (!seen || seen.revision !== entry.revision) {
        this.seen.set(p, { revision: entry.revision, since: now });
        return;
      }
      if (now - seen.since < this.o.ttlMs) return;
      this.won(p, await this.o.kv.update(key, this.value(), entry.revision));
    } catch (err) {
      // Losing a race to another standby is the normal case, not a problem.
      if (!isWrongRevision(err)) this.o.log.debug({ err, partition: p }, "lease acquire failed");
    }
  }

  private won(p: number, revision: number): void {
    if (this.stopped) return;
    this.seen.delete(p);
    this.held.set(p, { revision, renewedAt: this.now() });
    this.o.onAcquire(p, revision);
  }

  private lose(p: number): void {
    this.held.delete(p);
    this.seen.delete(p);
    this.o.onLose(p);
  }

  private fenceMs(): number {
    return Math.floor(this.o.ttlMs * 0.6);
  }

  private value(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ owner: this.o.replicaId, at: this.now() }));
  }
}

/** The KV CAS failure: JetStream API error 10071 "wrong last sequence". */
function isWrongRevision(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  return code === 10071 || /wrong last sequence/i.test(err.message);
}
