/**
 * The clustered engine: NATS JetStream for events, core NATS for live fan-out
 * and signals, NATS KV for small state. Needs nothing newer than nats-server
 * 2.9. Mapping (names from subjects.ts):
 *
 * - one stream per app, `TIDINGS_<app>` on `tdg.<app>.ev.>`, with
 *   `max_msgs_per_subject` = history per channel, `max_age`, and
 *   `duplicate_window` for idempotent publish (Nats-Msg-Id); or, with
 *   `streamPartitions` n > 1, n streams `TIDINGS-P<i>of<n>_<app>` on
 *   `tdg.<app>.ev-<i>of<n>.>`, a channel in partition `partitionOf(channel)`
 *   (subjects.ts) and its seqs interleaved into app seqs (js-partitions.ts);
 * - RePublish `tdg.<app>.ev.>` → `tdg.<app>.live.>` (from every partition)
 *   feeds live fan-out (js-live.ts fills gaps from the stream);
 * - signals are core publishes on `tdg.<app>.live.<channel>` (the channel's
 *   live subject, without headers: one subscription per channel) and
 *   `tdg.<app>.user.<user>`;
 * - KV: js-kv.ts.
 *
 * Every publish carries a Nats-Msg-Id (channel and idempotency key, or a generated
 * one) so the publisher's retries never store an event twice. The cost is
 * one dedupe entry per event for `duplicate_window` on the server.
 */
import {
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import {
  type Authenticator,
  type NatsConnection,
  nanos,
  nuid,
  type TlsOptions,
} from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  type EventInput,
  eventIdOf,
  type KvBucket,
  type Signal,
  type StoredEvent,
} from "../model.js";
import { LINK_OPTIONS } from "../nats/link.js";
import { addOrUpdateStream } from "../nats/streams.js";
import {
  appWildcard,
  type ChannelStream,
  channelStream,
  eventWildcard,
  generatedMsgId,
  liveWildcard,
  MAX_STREAM_PARTITIONS,
  msgIdForKey,
  partitionsOfStream,
  signalSubject,
  streamName,
  userSubject,
} from "../subjects.js";
import {
  type AppStreamLimits,
  type DeliveryHandler,
  type Engine,
  EngineUnavailableError,
  type HistoryPage,
  type HistoryQuery,
  type KvStore,
  type LiveSubscription,
  type PositionReads,
  type PublishOptions,
  type PublishResult,
  type SubscribeOptions,
} from "./engine.js";
import { encodeEventBody, encodeJson, isUnavailable, wrapError } from "./js-codec.js";
import { KvBuckets } from "./js-kv.js";
import { natsLeaders, spreadLeaders, takeLeaderLock } from "./js-leaders.js";
import { DEFAULT_LIVE_OPTIONS, LiveHub, type LiveOptions } from "./js-live.js";
import { PartitionSeqs, StreamPartitionsError } from "./js-partitions.js";
import {
  defaultPublisherOptions,
  PipelinedPublisher,
  type PublisherOptions,
} from "./js-publisher.js";
import { StreamReader } from "./js-reader.js";

export { StreamPartitionsError } from "./js-partitions.js";

/** What the engine needs beyond a connection (`JetStreamEngine.fromConnection`). */
export interface JetStreamEngineSettings {
  /** Stream and KV replicas: 1 (single node) or 3 (cluster). */
  replicas?: 1 | 3 | undefined;
  /** Timeout of JetStream API requests (reads, stream admin), ms. */
  requestTimeoutMs?: number | undefined;
  publisher?: Partial<PublisherOptions> | undefined;
  /** Live delivery bounds: position check interval and gap deadline (js-live.ts). */
  live?: Partial<LiveOptions> | undefined;
  /** Background failures (gap fill retries, handler exceptions). */
  onError?: ((err: unknown) => void) | undefined;
}

/** An engine with a connection of its own (`JetStreamEngine.connect`). */
export interface JetStreamEngineOptions extends JetStreamEngineSettings {
  /** NATS URLs, as an array or a comma-separated string. */
  servers: string[] | string;
  user?: string | undefined;
  pass?: string | undefined;
  token?: string | undefined;
  /** Credentials (.creds / NKey / JWT) authenticator; see shared/src/config/nats.ts. */
  authenticator?: Authenticator | undefined;
  tls?: TlsOptions | undefined;
  /** Connection name shown in NATS monitoring. */
  name?: string | undefined;
}

/** How long ensureApp keeps resending a stream's create or update that found NATS unavailable. */
const ENSURE_RETRY_MS = 30_000;

/**
 * Per-request timeout of live gap reads: well under the gap deadline, so a
 * failing read is retried several times (1 s is also the least a fetch takes).
 */
const LIVE_READ_TIMEOUT_MS = 1000;

/** How long `ensureApp` waits for new storage to answer before it fails. */
const SERVING_WAIT_MS = 30_000;

async function untilServing(attempt: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + SERVING_WAIT_MS;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (err) {
      if (!(err instanceof EngineUnavailableError) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export class JetStreamEngine implements Engine {
  private readonly js: JetStreamClient;
  private readonly reader: StreamReader;
  private readonly liveReader: StreamReader;
  private readonly publisher: PipelinedPublisher;
  private readonly publishDeadlineMs: number;
  private readonly live: LiveHub;
  private readonly kvBuckets: KvBuckets;
  private readonly replicas: number;
  private readonly onError: (err: unknown) => void;
  /** Partition count of each app `ensureApp` prepared; an app it never saw is on one stream. */
  private readonly partitions = new Map<string, number>();
  /** Apps whose partition leaders this process is spreading (in the background). */
  private readonly spreading = new Set<string>();
  /** Stops spreading leaders when the engine closes. */
  private readonly stopSpreading = new AbortController();
  private connected = true;
  private closing = false;

  /**
   * Opens a connection of its own (reconnecting forever, like every Tidings
   * link: `LINK_OPTIONS`) and closes it with the engine.
   */
  static async connect(options: JetStreamEngineOptions): Promise<JetStreamEngine> {
    const servers =
      typeof options.servers === "string"
        ? options.servers
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean)
        : options.servers;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers,
        user: options.user,
        pass: options.pass,
        token: options.token,
        authenticator: options.authenticator,
        tls: options.tls,
        name: options.name ?? "tidings",
        ...LINK_OPTIONS,
      });
    } catch (err) {
      throw wrapError("connect", err);
    }
    try {
      return await JetStreamEngine.open(nc, options, true);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /**
   * An engine on a connection the caller opened (a process's one NATS
   * connection, shared with presence and the cluster bus) and keeps: `close`
   * stops the engine and leaves the connection open for its owner to drain.
   * Readiness still follows the link.
   */
  static fromConnection(
    nc: NatsConnection,
    settings: JetStreamEngineSettings = {},
  ): Promise<JetStreamEngine> {
    return JetStreamEngine.open(nc, settings, false);
  }

  private static async open(
    nc: NatsConnection,
    settings: JetStreamEngineSettings,
    ownsConnection: boolean,
  ): Promise<JetStreamEngine> {
    try {
      // Also checks that JetStream is enabled for this account.
      const jsm = await jetstreamManager(nc, { timeout: settings.requestTimeoutMs ?? 5000 });
      const liveJsm = await jetstreamManager(nc, {
        timeout: LIVE_READ_TIMEOUT_MS,
        checkAPI: false,
      });
      return new JetStreamEngine(nc, jsm, liveJsm, settings, ownsConnection);
    } catch (err) {
      throw wrapError("JetStream", err);
    }
  }

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    liveJsm: JetStreamManager,
    options: JetStreamEngineSettings,
    private readonly ownsConnection: boolean,
  ) {
    const timeout = options.requestTimeoutMs ?? 5000;
    const onError = options.onError ?? (() => {});
    this.onError = onError;
    this.js = jetstream(nc, { timeout });
    this.replicas = options.replicas ?? 1;
    this.reader = new StreamReader(nc, jsm, timeout);
    this.publisher = new PipelinedPublisher(nc, options.publisher);
    this.publishDeadlineMs = options.publisher?.deadlineMs ?? defaultPublisherOptions.deadlineMs;
    // Live gap reads get short timeouts of their own: a live event waits on
    // them, and a retry after a quick failure beats one slow attempt.
    this.liveReader = new StreamReader(nc, liveJsm, LIVE_READ_TIMEOUT_MS);
    this.live = new LiveHub(
      nc,
      this.liveReader,
      () => this.isReady(),
      onError,
      Object.assign({}, DEFAULT_LIVE_OPTIONS, options.live),
    );
    this.kvBuckets = new KvBuckets(this.js, this.replicas);
    void this.watchStatus();
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") {
        this.connected = false;
        // Fail fast: nothing in flight can be acknowledged until we are back,
        // and the caller (with its idempotency key) decides whether to retry.
        this.publisher.failAll(new EngineUnavailableError("NATS connection lost"));
      } else if (s.type === "reconnect") {
        this.connected = true;
        this.live.resume();
      } else if (s.type === "slowConsumer") {
        // The client dropped messages for a subscription: live channels may
        // have lost their newest event, which no later event would reveal.
        this.live.resume();
      }
    }
  }

  publishRetries(): number {
    return this.publisher.resends;
  }

  positionReads(): PositionReads {
    return this.live.positionReads();
  }

  isReady(): boolean {
    return this.connected && !this.closing && !this.nc.isClosed();
  }

  private assertReady(): void {
    if (!this.isReady()) throw new EngineUnavailableError("NATS not connected");
  }

  async ensureApp(appId: string, limits: AppStreamLimits): Promise<void> {
    this.assertReady();
    const partitions = limits.streamPartitions ?? 1;
    if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > MAX_STREAM_PARTITIONS) {
      throw new RangeError(
        `app ${appId}: streamPartitions must be 1..${MAX_STREAM_PARTITIONS}, not ${partitions}`,
      );
    }
    const maxAge = Math.max(limits.historyMaxAgeSec, 0);
    // The server rejects a dedupe window longer than max_age.
    // The publisher resends an unacknowledged publish under the same
    // Nats-Msg-Id until its deadline: a shorter window would store such a
    // retry again, one publish under two seqs.
    const windowMs = Math.max(Math.max(1, limits.dedupeWindowSec) * 1000, this.publishDeadlineMs);
    const dedupeMs = maxAge > 0 ? Math.min(windowMs, maxAge * 1000) : windowMs;
    const configs = Array.from({ length: partitions }, (_, p) => {
      const config: Partial<StreamConfig> & { name: string } = {
        name: streamName(appId, p, partitions),
        description:
          partitions === 1
            ? `Tidings app ${appId}: events`
            : `Tidings app ${appId}: events, partition ${p} of ${partitions}`,
        subjects: [eventWildcard(appId, p, partitions)],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        num_replicas: this.replicas,
        max_msgs_per_subject: limits.historyPerChannel,
        max_age: nanos(maxAge * 1000),
        duplicate_window: nanos(dedupeMs),
        republish: { src: eventWildcard(appId, p, partitions), dest: liveWildcard(appId) },
      };
      return config;
    });
    const names = configs.map((c) => c.name);
    // Before creating anything (no new streams beside the old ones), and
    // after (another process may have created another layout meanwhile).
    await this.checkPartitions(appId, partitions, names);
    await Promise.all(configs.map((c) => this.ensureStream(appId, c)));
    await this.checkPartitions(appId, partitions, names);
    for (const config of configs) {
      // Both readers drop a publish stored twice within this window (js-repeats.ts).
      this.reader.noteDedupeWindow(config.name, config.duplicate_window);
      this.liveReader.noteDedupeWindow(config.name, config.duplicate_window);
    }
    this.partitions.set(appId, partitions);
    // A stream or bucket created a moment ago (here, or by another process at
    // once) may not answer reads yet: wait until both do, so that a process
    // reporting ready can serve a first subscribe.
    await Promise.all(
      names.map((name, p) =>
        untilServing(() =>
          // Any one subject of the stream's will do.
          this.reader.lastSeq(name, eventWildcard(appId, p, partitions).replace(/>$/, "probe")),
        ),
      ),
    );
    await untilServing(() => this.kvBuckets.probe());
    if (this.replicas > 1 && partitions > 1) this.spreadLeaders(appId, names);
  }

  /**
   * Moves the partitions' leaders apart, in the background: leaders on fewer
   * nodes cost throughput, not correctness, so neither a wait for a lagging
   * replica nor a failure may hold up ensureApp (and with it the gateway's
   * start and readiness). Failures are reported to onError, never thrown.
   */
  private spreadLeaders(appId: string, names: readonly string[]): void {
    if (this.spreading.has(appId)) return;
    this.spreading.add(appId);
    const signal = this.stopSpreading.signal;
    const run = async () => {
      // One process at a time spreads an app (see takeLeaderLock).
      const release = await takeLeaderLock(this.kv(appId, "cursors"));
      if (!release) return;
      try {
        const ops = natsLeaders(this.nc, this.jsm, signal);
        const { spread, leaders, why } = await spreadLeaders(names, ops, undefined, signal);
        if (!spread && !signal.aborted) {
          this.onError(
            new Error(`app ${appId}: partition leaders not spread (${why}): ${leaders.join(", ")}`),
          );
        }
      } finally {
        await release().catch(() => {});
      }
    };
    run()
      .catch((err) => {
        if (!signal.aborted) this.onError(err);
      })
      .finally(() => this.spreading.delete(appId));
  }

  /**
   * Creates one stream, or updates it to `config`. Both are idempotent, so a
   * request that timed out or found no meta leader (a cluster starting, or
   * busy placing other streams) is sent again, for up to ENSURE_RETRY_MS: a
   * gateway starting beside others should not fail on one slow answer.
   */
  private async ensureStream(
    appId: string,
    config: Partial<StreamConfig> & { name: string },
  ): Promise<void> {
    const deadline = Date.now() + ENSURE_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await addOrUpdateStream(this.jsm, config);
        return;
      } catch (err) {
        if (!isUnavailable(err) || Date.now() >= deadline || this.closing)
          throw wrapError(`ensureApp ${appId}`, err);
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * attempt)));
    }
  }

  /**
   * Refuses an app whose events sit in streams of another layout: reading
   * the new partitions would show empty history for every channel that moved,
   * and the old events would sit unread until they expire.
   */
  private async checkPartitions(
    appId: string,
    partitions: number,
    expected: readonly string[],
  ): Promise<void> {
    const found: string[] = [];
    try {
      for await (const name of this.jsm.streams.names(appWildcard(appId))) found.push(name);
    } catch (err) {
      throw wrapError(`ensureApp ${appId} (streams)`, err);
    }
    // Only Tidings' own layouts count: a stream someone else made on the
    // app's subjects (an audit copy of `tdg.<app>.live.>`, say) holds no
    // events of ours, and must not stop an app that was running beside it.
    const others = found
      .filter((n) => !expected.includes(n) && partitionsOfStream(appId, n) !== null)
      .sort();
    if (others.length === 0) return;
    const counts = [...new Set(others.map((n) => partitionsOfStream(appId, n)))];
    const was = counts.length === 1 ? `${counts[0]}` : "another layout";
    throw new StreamPartitionsError(
      `app ${appId}: streamPartitions is ${partitions}, but its events are in streams made ` +
        `for ${was} (${others.join(", ")}); changing the partition count would hide their ` +
        `history. Set streamPartitions back to ${was === "another layout" ? "what made them" : was}, ` +
        "or move the events by hand (README, Stream partitions).",
    );
  }

  async publish(
    appId: string,
    channel: string,
    event: EventInput,
    options?: PublishOptions,
  ): Promise<PublishResult> {
    this.assertReady();
    const key = options?.idempotencyKey;
    // One stream holds every channel of the app, so the channel goes into the id.
    const msgId =
      key !== undefined ? msgIdForKey(JSON.stringify([channel, key])) : generatedMsgId(nuid.next());
    const time = Date.now();
    const names = this.names(appId, channel);
    let ack: Awaited<ReturnType<PipelinedPublisher["publish"]>>;
    try {
      ack = await this.publisher.publish(names.eventSubject, encodeEventBody(event, time), msgId);
    } catch (err) {
      throw wrapError("publish", err);
    }
    const seq = names.seqs.toApp(ack.seq);
    if (!ack.duplicate) return { seq, id: eventIdOf(seq), time, duplicate: false };
    // The first publish's time lives in its stored body.
    const original = await this.reader.getMsg(ack.stream, { seq: ack.seq });
    let originalTime = time;
    if (original) {
      try {
        const body = JSON.parse(new TextDecoder().decode(original.data)) as { time?: unknown };
        if (typeof body.time === "number") originalTime = body.time;
      } catch {
        // Not our body format: fall back to now.
      }
    }
    return { seq, id: eventIdOf(seq), time: originalTime, duplicate: true };
  }

  /** Where a channel's events are, and how its stream seqs show as app seqs. */
  private names(appId: string, channel: string): ChannelStream & { seqs: PartitionSeqs } {
    const partitions = this.partitions.get(appId) ?? 1;
    const n = channelStream(appId, channel, partitions);
    // A literal, not `{ ...n, seqs }`: see `storedEvent` in model.ts.
    return {
      stream: n.stream,
      eventSubject: n.eventSubject,
      liveSubject: n.liveSubject,
      liveWildcard: n.liveWildcard,
      partition: n.partition,
      seqs: new PartitionSeqs(n.partition, partitions),
    };
  }

  subscribe(
    appId: string,
    channel: string,
    handler: DeliveryHandler,
    options?: SubscribeOptions,
  ): LiveSubscription & { ready: Promise<number> } {
    const names = this.names(appId, channel);
    const { seqs } = names;
    if (seqs.identity) return this.live.subscribe(channel, names, handler, options?.onGap);
    const onGap = options?.onGap;
    const sub = this.live.subscribe(
      channel,
      names,
      (d) => handler(seqs.delivery(d)),
      onGap && ((gap) => onGap(seqs.gap(gap))),
    );
    const ready = sub.ready.then((seq) => seqs.toApp(seq));
    // Like the hub's own: a caller that never awaits `ready` must not crash the process.
    ready.catch(() => {});
    return { ready, close: () => sub.close() };
  }

  signal(appId: string, channel: string, signal: Signal): void {
    this.corePublish(signalSubject(appId, channel), signal);
  }

  subscribeUser(
    appId: string,
    userId: string,
    handler: (signal: Signal) => void,
  ): LiveSubscription & { ready: Promise<void> } {
    return this.live.subscribeUser(userSubject(appId, userId), handler);
  }

  signalUser(appId: string, userId: string, signal: Signal): void {
    this.corePublish(userSubject(appId, userId), signal);
  }

  private corePublish(subject: string, signal: Signal): void {
    // Signals are at-most-once: while disconnected they are dropped rather
    // than buffered and replayed late.
    if (!this.isReady()) return;
    try {
      this.nc.publish(subject, encodeJson(signal));
    } catch {
      // Closing connection: dropping a signal is within its contract.
    }
  }

  async history(appId: string, channel: string, query: HistoryQuery): Promise<HistoryPage> {
    this.assertReady();
    const limit = Math.max(0, Math.floor(query.limit));
    const afterSeq =
      query.afterSeq === undefined ? undefined : Math.max(0, Math.floor(query.afterSeq));
    const { stream, eventSubject: subject, seqs } = this.names(appId, channel);
    if (seqs.identity) {
      if (afterSeq !== undefined) {
        return this.reader.historyAfter(stream, subject, channel, afterSeq, limit);
      }
      return this.reader.historyBefore(stream, subject, channel, query.beforeSeq, limit);
    }
    // Bounds in stream seqs: app seqs of this partition above `afterSeq`
    // (below `beforeSeq`) are exactly the stream seqs above (below) these.
    const page =
      afterSeq !== undefined
        ? await this.reader.historyAfter(stream, subject, channel, seqs.atOrBelow(afterSeq), limit)
        : await this.reader.historyBefore(
            stream,
            subject,
            channel,
            // Below a non-integer bound means at or below the integer under it.
            query.beforeSeq === undefined
              ? undefined
              : seqs.atOrBelow(Math.ceil(query.beforeSeq) - 1) + 1,
            limit,
          );
    return seqs.page(page);
  }

  async getEvent(appId: string, channel: string, seq: number): Promise<StoredEvent | null> {
    this.assertReady();
    const { stream, eventSubject: subject, seqs } = this.names(appId, channel);
    if (seqs.identity) return this.reader.getEvent(stream, subject, channel, seq);
    // A seq of another partition is no event of this channel's.
    const streamSeq = seqs.exact(seq);
    if (streamSeq === null) return null;
    const event = await this.reader.getEvent(stream, subject, channel, streamSeq);
    return event && seqs.event(event);
  }

  async lastSeq(appId: string, channel: string): Promise<number> {
    this.assertReady();
    const { stream, eventSubject: subject, seqs } = this.names(appId, channel);
    return seqs.toApp(await this.reader.lastSeq(stream, subject));
  }

  kv(appId: string, bucket: KvBucket): KvStore {
    return this.kvBuckets.store(appId, bucket);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stopSpreading.abort();
    this.live.close();
    this.publisher.close();
    this.reader.close();
    this.liveReader.close();
    if (!this.ownsConnection) return;
    if (this.connected) {
      try {
        await this.nc.drain();
        return;
      } catch {
        // Lost the link while draining: close below.
      }
    }
    // Draining needs the server; while disconnected just close.
    if (!this.nc.isClosed()) await this.nc.close();
  }
}
