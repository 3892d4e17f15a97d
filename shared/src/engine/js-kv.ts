/**
 * KvStore over NATS KV (2.9-compatible).
 *
 * Layout: one NATS KV bucket per Tidings bucket name (`tidings_cursors`, ...),
 * shared by all apps; the app is the first key token (`<app>.<key>`, both
 * encoded by subjects.ts). Apps therefore need no per-app bucket setup, and
 * `keys(prefix)` lists one app's keys with a server-side filter on `<app>.>`
 * and then filters the decoded keys by prefix.
 */
import { JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { Json, KvBucket } from "../model.js";
import { createOrOpenKv } from "../nats/streams.js";
import { decodeKvKey, kvAppFilter, kvBucketName, kvKey } from "../subjects.js";
import type { KvStore } from "./engine.js";
import { decodeJson, encodeJson, wrapError } from "./js-codec.js";

const WRONG_LAST_SEQUENCE = 10071;
/**
 * Buckets a gateway reads on a client's first requests (subscribe looks up
 * blocks and cursors, for one), so startup opens and reads them before the
 * process reports ready. A new bucket must be placed here, on or off.
 */
const READ_AT_START: Record<KvBucket, boolean> = {
  cursors: true,
  acks: true,
  reactions: true,
  chat: true,
  blocks: true,
  presence: false,
};
const PROBE_KEY = "_probe";
const WRONG_LAST_SEQUENCE_UNKNOWN = 10164;

/** Opens (creating on first use) the shared NATS KV buckets, once per engine. */
export class KvBuckets {
  private readonly opened = new Map<KvBucket, Promise<KV>>();
  private readonly kvm: Kvm;

  constructor(
    js: JetStreamClient,
    private readonly replicas: number,
  ) {
    this.kvm = new Kvm(js);
  }

  bucket(name: KvBucket): Promise<KV> {
    let kv = this.opened.get(name);
    if (!kv) {
      kv = createOrOpenKv(this.kvm, kvBucketName(name), { history: 1, replicas: this.replicas });
      // A failed open (NATS down) must not poison the cache for later calls.
      kv.catch(() => this.opened.delete(name));
      this.opened.set(name, kv);
    }
    return kv;
  }

  /**
   * Opens the buckets a gateway needs and reads one key from each. Creating
   * an R3 bucket while another process creates it can time out the first
   * lookups (seen on fresh clusters): better at startup than on a client's
   * first subscribe.
   */
  async probe(): Promise<void> {
    const names = (Object.keys(READ_AT_START) as KvBucket[]).filter((n) => READ_AT_START[n]);
    await Promise.all(
      names.map(async (name) => {
        try {
          await (await this.bucket(name)).get(PROBE_KEY);
        } catch (err) {
          throw wrapError(`kv probe ${name}`, err);
        }
      }),
    );
  }

  store(appId: string, name: KvBucket): KvStore {
    return new AppKv(() => this.bucket(name), appId);
  }
}

function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === WRONG_LAST_SEQUENCE || err.code === WRONG_LAST_SEQUENCE_UNKNOWN)
  );
}

class AppKv implements KvStore {
  constructor(
    private readonly open: () => Promise<KV>,
    private readonly appId: string,
  ) {}

  private async kv(): Promise<KV> {
    try {
      return await this.open();
    } catch (err) {
      throw wrapError("kv open", err);
    }
  }

  async get(key: string): Promise<{ value: Json; revision: number } | null> {
    const kv = await this.kv();
    try {
      const e = await kv.get(kvKey(this.appId, key));
      // On 2.9 a deleted key reads back as a DEL/PURGE marker, not as absent.
      if (e?.operation !== "PUT") return null;
      return { value: decodeJson(e.value) as Json, revision: e.revision };
    } catch (err) {
      throw wrapError("kv get", err);
    }
  }

  async put(key: string, value: Json): Promise<number> {
    const kv = await this.kv();
    try {
      return await kv.put(kvKey(this.appId, key), encodeJson(value));
    } catch (err) {
      throw wrapError("kv put", err);
    }
  }

  async create(key: string, value: Json): Promise<number | null> {
    const kv = await this.kv();
    try {
      return await kv.create(kvKey(this.appId, key), encodeJson(value));
    } catch (err) {
      if (isWrongLastSequence(err)) return null;
      throw wrapError("kv create", err);
    }
  }

  async update(key: string, value: Json, revision: number): Promise<number | null> {
    const kv = await this.kv();
    try {
      return await kv.update(kvKey(this.appId, key), encodeJson(value), revision);
    } catch (err) {
      if (isWrongLastSequence(err)) return null;
      throw wrapError("kv update", err);
    }
  }

  async delete(key: string): Promise<void> {
    const kv = await this.kv();
    try {
      await kv.delete(kvKey(this.appId, key));
    } catch (err) {
      throw wrapError("kv delete", err);
    }
  }

  async keys(prefix: string): Promise<string[]> {
    const kv = await this.kv();
    const out: string[] = [];
    try {
      for await (const k of await kv.keys(kvAppFilter(this.appId))) {
        const key = decodeKvKey(this.appId, k);
        if (key?.startsWith(prefix)) out.push(key);
      }
    } catch (err) {
      throw wrapError("kv keys", err);
    }
    return out;
  }
}
