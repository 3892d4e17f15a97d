/**
 * Reads of one app's stream: single messages, ranges of one channel, history
 * pages. Nothing here needs a 2.10+ server (no batch direct get, no
 * multi-filter consumers).
 *
 * Every read answers what the stream leader holds. Single messages come from
 * STREAM.MSG.GET (answered by the leader, so a read after an acknowledged
 * publish sees it) rather than direct get (any replica, possibly behind);
 * ranges from the leader too (readRange), from a consumer on the leader
 * read with raw pulls (js-pull.ts); a replay's next page continues on the
 * consumer the last one left (Cursor).
 */
import {
  AckPolicy,
  type ConsumerInfo,
  DeliverPolicy,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { StoredEvent } from "../model.js";
import { Requests } from "../nats/requests.js";
import { isStreamNotFound } from "../nats/streams.js";
import { EngineUnavailableError, type HistoryPage } from "./engine.js";
import { decodeEvent, JetStreamEngineError, msgIdOfHeaders, wrapError } from "./js-codec.js";
import { ConsumerGoneError, ConsumerPulls, LostDeliveryError, type RawMsg } from "./js-pull.js";
import { distinctEvents } from "./js-repeats.js";

export type { RawMsg };

export interface RangeOptions {
  /** Exclusive upper bound of the seqs to read. */
  stopBeforeSeq?: number | undefined;
  /** Messages to read with single leader requests before using a consumer. */
  serialSteps?: number | undefined;
}

interface Range {
  stream: string;
  subject: string;
  stop: number;
}

type MsgGet = { seq: number } | { last_by_subj: string } | { seq: number; next_by_subj: string };

/** The JetStream API answered with an error object. */
export class JsApiError extends Error {
  override name = "JsApiError";
  constructor(
    message: string,
    readonly code: number,
    readonly errCode: number,
  ) {
    super(message);
  }
}

/**
 * A consumer left where a read stopped, on the stream leader (as far as
 * that read could tell). A replay reads page after page, each from where
 * the last one ended; taking the consumer up again saves a create and a
 * delete per page, and the server's work behind them (on 2.9 most of its
 * cost of a page of a channel among many: loadtest/results.md). Keyed by
 * stream, subject and the seq a read would start at; taken by one read at
 * a time.
 */
interface Cursor {
  stream: string;
  consumer: string;
  /** The stream leader it was read on; null on a server that is not clustered. */
  leader: string | undefined | null;
  /** Consumer seq of its last delivery, where its next pull must continue. */
  cseq: number;
  expiry: NodeJS.Timeout;
}

/** A parked consumer not taken up within this long is deleted. */
const CURSOR_IDLE_MS = 5_000;
const MAX_CURSORS = 256;
/** A cursor's pull asks for at most this many (the rest comes as `more`). */
const MAX_PULL_BATCH = 100_000;

const NO_MESSAGE = 10037;
const STREAM_NOT_FOUND = 10059;
const NS_PER_SEC = 1_000_000_000;
const PLACEMENT_ATTEMPTS = 12;
/** Leader requests in flight at once when every message is read from it. */
const PIPELINE = 128;

export class StreamReader {
  /** STREAM.MSG.GET and STREAM.INFO are the hot requests (position checks, start seqs, gap fills). */
  private readonly requests: Requests;
  /** Pages of history: pulls on the reader's own consumers. */
  private readonly pulls: ConsumerPulls;
  private readonly cursors = new Map<string, Cursor>();

  constructor(
    nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    timeoutMs: number,
  ) {
    this.requests = new Requests(nc, timeoutMs);
    this.pulls = new ConsumerPulls(nc, timeoutMs);
  }

  /**
   * Ends the reader's subscriptions (its pulls' inbox, its requests') and
   * deletes its parked consumers, best effort: on a connection the reader
   * does not own they would otherwise stay until the connection closes, and
   * the consumers until the server's inactive threshold. Reads fail from here.
   */
  close(): void {
    this.pulls.close();
    this.requests.close();
    for (const c of this.cursors.values()) {
      clearTimeout(c.expiry);
      this.deleteConsumer(c.stream, c.consumer);
    }
    this.cursors.clear();
  }

  /**
   * Duplicate window per stream, ms: the app's configured one, which
   * ensureApp sets on the stream (0 until this process has called it).
   */
  private readonly dedupeWindows = new Map<string, number>();

  /** Records a stream's duplicate window (nanoseconds, as in its config). */
  noteDedupeWindow(stream: string, windowNanos: number | undefined): void {
    if (windowNanos !== undefined) this.dedupeWindows.set(stream, windowNanos / 1_000_000);
  }

  dedupeWindowMs(stream: string): number {
    return this.dedupeWindows.get(stream) ?? 0;
  }

  /** One message, or null when there is none (or no such stream). */
  async getMsg(stream: string, req: MsgGet): Promise<RawMsg | null> {
    let reply: unknown;
    try {
      const r = await this.requests.request(
        `$JS.API.STREAM.MSG.GET.${stream}`,
        JSON.stringify(req),
      );
      reply = r.json();
    } catch (err) {
      throw wrapError("stream read", err);
    }
    const body = reply as {
      error?: { code: number; err_code: number; description: string };
      message?: { subject: string; seq: number; data?: string; hdrs?: string };
    };
    if (body.error) {
      if (body.error.err_code === NO_MESSAGE || body.error.err_code === STREAM_NOT_FOUND) {
        return null;
      }
      const err = new JsApiError(body.error.description, body.error.code, body.error.err_code);
      // A 503 here is a leader election: surface it as unavailability.
      throw body.error.code === 503 ? wrapError("stream read", err) : err;
    }
    const m = body.message;
    if (!m) throw new JetStreamEngineError("empty STREAM.MSG.GET reply");
    return {
      subject: m.subject,
      seq: m.seq,
      data: Buffer.from(m.data ?? "", "base64"),
      msgId: m.hdrs ? msgIdOfHeaders(Buffer.from(m.hdrs, "base64")) : undefined,
    };
  }

  /**
   * The stream's last seq and leader (STREAM.INFO, which the leader answers;
   * without a leader 2.9 lets a replica answer, naming none: unavailable).
   * No such stream: last seq 0.
   */
  async streamPosition(stream: string): Promise<{ lastSeq: number; leader: string | undefined }> {
    let reply: unknown;
    try {
      reply = (await this.requests.request(`$JS.API.STREAM.INFO.${stream}`, "")).json();
    } catch (err) {
      throw wrapError("stream info", err);
    }
    const body = reply as {
      error?: { code: number; err_code: number; description: string };
      state?: { last_seq?: number };
      cluster?: { leader?: string };
    };
    if (body.error) {
      if (body.error.err_code === STREAM_NOT_FOUND) return { lastSeq: 0, leader: undefined };
      const err = new JsApiError(body.error.description, body.error.code, body.error.err_code);
      throw body.error.code === 503 ? wrapError("stream info", err) : err;
    }
    // A single server names no cluster; a clustered stream without a leader names none.
    if (body.cluster && !body.cluster.leader) {
      throw new EngineUnavailableError("stream info: stream has no leader");
    }
    return { lastSeq: body.state?.last_seq ?? 0, leader: body.cluster?.leader };
  }

  async lastSeq(stream: string, subject: string): Promise<number> {
    return (await this.getMsg(stream, { last_by_subj: subject }))?.seq ?? 0;
  }

  /**
   * Messages of `subject` with seq >= fromSeq (and below `stopBeforeSeq`),
   * oldest first, at most `max`, exactly as the stream leader holds them;
   * `more` says whether the leader holds another one after them.
   *
   * Why the leader: a follower may be behind (restarted, paused) or, on 2.9,
   * diverged from it after a cluster-state reset, and an ephemeral consumer
   * sits on a replica picked at random. So the first `serialSteps` messages
   * come from STREAM.MSG.GET (leader-answered) one by one, which is cheaper
   * than a consumer for the one or two events a gap fill usually misses;
   * the rest from a consumer that landed on the leader (see readThroughLeader).
   */
  async readRange(
    stream: string,
    subject: string,
    fromSeq: number,
    max: number,
    { stopBeforeSeq = Infinity, serialSteps = 0 }: RangeOptions = {},
  ): Promise<{ msgs: RawMsg[]; more: boolean }> {
    const range: Range = { stream, subject, stop: stopBeforeSeq };
    const msgs: RawMsg[] = [];
    let next = Math.max(1, fromSeq);
    for (let step = 0; step < serialSteps || msgs.length >= max; step++) {
      const m = await this.nextOnLeader(range, next);
      if (!m) return { msgs, more: false };
      if (msgs.length >= max) return { msgs, more: true };
      msgs.push(m);
      next = m.seq + 1;
    }
    const rest = await this.readThroughLeader(range, next, max - msgs.length);
    return { msgs: msgs.length === 0 ? rest.msgs : msgs.concat(rest.msgs), more: rest.more };
  }

  /** The leader's first message of the range at or after `seq`, or null. */
  private async nextOnLeader(range: Range, seq: number): Promise<RawMsg | null> {
    const m = await this.getMsg(range.stream, { seq, next_by_subj: range.subject });
    return m && m.seq < range.stop ? m : null;
  }

  /**
   * Consumer placement is uniform over the stream's replicas (2.9 and 2.15
   * alike; consumers take no placement), so this creates one until it sits
   * on the stream leader: 3 creates on average on an R3 stream, and 12
   * misses in a row ((2/3)^12, under 1%) fall back to reading every message
   * from the leader, pipelined on the seqs the last consumer returned. On a
   * single server or an R1 stream the first consumer is on the leader.
   *
   * A read that stops short of the end leaves its consumer parked (see
   * Cursor), and a read from where it stopped takes it up again.
   */
  private async readThroughLeader(
    range: Range,
    from: number,
    want: number,
  ): Promise<{ msgs: RawMsg[]; more: boolean }> {
    const parked = this.takeCursor(range, from);
    if (parked) {
      const page = await this.readCursor(parked, range, want);
      if (page) return page;
    }
    let leader: Promise<string | undefined> | undefined;
    let hints: number[] = [];
    for (let attempt = 1; attempt <= PLACEMENT_ATTEMPTS; attempt++) {
      leader ??= this.streamLeader(range.stream);
      const [ci, lead] = await Promise.all([this.createConsumer(range, from), leader]);
      if (!ci) return { msgs: [], more: false };
      let parkedAgain = false;
      try {
        // A consumer of a server that is not clustered names no leader (the
        // stream may: 2.10+ does): it is the only copy there is.
        const clustered = ci.cluster !== undefined;
        if (!clustered || ci.cluster?.leader === lead) {
          const { cseq, ...page } = await this.drain(ci, range, want);
          parkedAgain = this.park(
            range,
            { consumer: ci.name, leader: clustered ? lead : null, cseq },
            page,
          );
          return page;
        }
        if (lead === undefined) throw new EngineUnavailableError("stream has no leader");
        if (attempt === PLACEMENT_ATTEMPTS) {
          hints = (await this.drain(ci, range, want)).msgs.map((m) => m.seq);
        }
      } catch (err) {
        // Right after a create, or after its server came back, the consumer's
        // pull subject may not be known to our server yet, or a delivery was
        // lost on the way: try another one, and after the last, read from the
        // leader message by message (below) rather than fail a read the
        // leader can answer.
        if (!(err instanceof ConsumerGoneError || err instanceof LostDeliveryError)) throw err;
      } finally {
        if (!parkedAgain) this.deleteConsumer(range.stream, ci.name);
      }
    }
    return this.chainOnLeader(range, from, want, hints);
  }

  private deleteConsumer(stream: string, name: string): void {
    this.jsm.consumers.delete(stream, name).catch(() => {
      // Best effort: the inactive threshold removes it anyway.
    });
  }

  private cursorKey(range: Range, from: number): string {
    return `${range.stream} ${range.subject} ${from}`;
  }

  /**
   * Keeps the consumer of a read that stopped with more to come, for a read
   * of the next messages. Only a read that filled its pull qualifies: one
   * that stopped at `stop` may have more messages of its pull on the way,
   * and one that ran out ends in a status, neither of which may reach the
   * next pull. False when not parked (the caller deletes the consumer).
   */
  private park(
    range: Range,
    at: Omit<Cursor, "stream" | "expiry">,
    page: { msgs: RawMsg[]; more: boolean },
  ): boolean {
    const { consumer } = at;
    const last = page.msgs.at(-1);
    if (!page.more || !last) return false;
    const key = this.cursorKey(range, last.seq + 1);
    if (this.cursors.has(key) || this.cursors.size >= MAX_CURSORS) return false;
    const expiry = setTimeout(() => {
      if (this.cursors.get(key)?.consumer !== consumer) return;
      this.cursors.delete(key);
      this.deleteConsumer(range.stream, consumer);
    }, CURSOR_IDLE_MS);
    expiry.unref();
    this.cursors.set(key, {
      stream: range.stream,
      consumer,
      leader: at.leader,
      cseq: at.cseq,
      expiry,
    });
    return true;
  }

  private takeCursor(range: Range, from: number): Cursor | undefined {
    const key = this.cursorKey(range, from);
    const c = this.cursors.get(key);
    if (!c) return undefined;
    this.cursors.delete(key);
    clearTimeout(c.expiry);
    return c;
  }

  /**
   * The next page from a parked consumer, or null when it cannot be used
   * (gone, or the stream has another leader now: the caller reads afresh).
   * The leader is asked alongside the pull, as a fresh read asks it
   * alongside the create; a consumer of a server that is not clustered
   * needs no asking.
   */
  private async readCursor(
    c: Cursor,
    range: Range,
    want: number,
  ): Promise<{ msgs: RawMsg[]; more: boolean } | null> {
    // Events stored since the last page count too: a pull the consumer cannot fill ends at once.
    const batch = Math.min(want, MAX_PULL_BATCH);
    const pulled = this.pulls.pull(range.stream, c.consumer, batch, range.stop, c.cseq);
    const leader = c.leader === null ? undefined : this.streamLeader(range.stream);
    // Both are awaited below; neither may reject unobserved if the other fails first.
    pulled.catch(() => {});
    leader?.catch(() => {});
    let page: { msgs: RawMsg[]; more: boolean };
    let cseq: number;
    try {
      const r = await pulled;
      if (leader && (await leader) !== c.leader) throw new Error("stream leader changed");
      page = { msgs: r.msgs, more: !r.reachedStop && r.pending > 0 };
      cseq = r.cseq;
    } catch {
      // Gone, moved or a delivery lost: the caller reads from the same seq on a fresh consumer.
      this.deleteConsumer(range.stream, c.consumer);
      return null;
    }
    if (!this.park(range, { consumer: c.consumer, leader: c.leader, cseq }, page)) {
      this.deleteConsumer(range.stream, c.consumer);
    }
    return page;
  }

  /**
   * Every message from the leader, each request naming the seq after the
   * previous message. A follower's seqs (`hints`) let the requests go out
   * together; only the leader's answers are used, so a wrong hint costs one
   * wasted request and the chain goes on one by one from the leader's answer.
   */
  private async chainOnLeader(
    range: Range,
    from: number,
    want: number,
    hints: number[],
  ): Promise<{ msgs: RawMsg[]; more: boolean }> {
    const asked = new Map<number, Promise<RawMsg | null>>();
    const ask = (seq: number): Promise<RawMsg | null> => {
      let answer = asked.get(seq);
      if (!answer) {
        answer = this.nextOnLeader(range, seq);
        // Answers to wrong hints are never awaited.
        answer.catch(() => {});
        asked.set(seq, answer);
      }
      return answer;
    };
    const msgs: RawMsg[] = [];
    let issued = 0;
    let next = from;
    for (;;) {
      for (; issued < hints.length && issued < msgs.length + PIPELINE; issued++) {
        ask((hints[issued] ?? 0) + 1);
      }
      const m = await ask(next);
      asked.delete(next);
      if (!m) return { msgs, more: false };
      if (msgs.length >= want) return { msgs, more: true };
      msgs.push(m);
      next = m.seq + 1;
    }
  }

  private async streamLeader(stream: string): Promise<string | undefined> {
    try {
      const info = await this.jsm.streams.info(stream);
      return info.cluster?.leader;
    } catch (err) {
      throw wrapError("stream info", err);
    }
  }

  private async createConsumer(range: Range, from: number): Promise<ConsumerInfo | null> {
    try {
      return await this.jsm.consumers.add(range.stream, {
        filter_subject: range.subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: from,
        ack_policy: AckPolicy.None,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: 30 * NS_PER_SEC,
      });
    } catch (err) {
      if (isStreamNotFound(err)) return null;
      throw wrapError("history read", err);
    }
  }

  /** Reads up to `want` messages of the range from a fresh consumer. */
  private async drain(
    ci: ConsumerInfo,
    range: Range,
    want: number,
  ): Promise<{ msgs: RawMsg[]; more: boolean; cseq: number }> {
    const take = Math.min(want, ci.num_pending);
    if (take === 0) return { msgs: [], more: ci.num_pending > 0, cseq: 0 };
    try {
      const r = await this.pulls.pull(range.stream, ci.name, take, range.stop);
      return { msgs: r.msgs, more: !r.reachedStop && r.pending > 0, cseq: r.cseq };
    } catch (err) {
      throw wrapError("history read", err);
    }
  }

  async getEvent(
    stream: string,
    subject: string,
    channel: string,
    seq: number,
  ): Promise<StoredEvent | null> {
    if (!Number.isSafeInteger(seq) || seq < 1) return null;
    const m = await this.getMsg(stream, { seq });
    if (!m || m.subject !== subject) return null;
    return decodeEvent(channel, m.seq, m.data);
  }

  /**
   * Events after `afterSeq`. `truncated` rule: retained messages of one
   * subject are always a suffix of everything stored on it (per-subject and
   * age limits both drop oldest first). So nothing after `afterSeq` was lost
   * when the first retained event after it is `afterSeq + 1`, or when some
   * retained event of the channel is at or before `afterSeq`. Otherwise a
   * loss is possible only if the channel is at its per-subject limit, or
   * `max_age` is set and the stream's first seq has moved past `afterSeq + 1`;
   * in those cases we report true (possibly conservatively).
   */
  async historyAfter(
    stream: string,
    subject: string,
    channel: string,
    afterSeq: number,
    limit: number,
  ): Promise<HistoryPage> {
    // The page's own first message says whether the event right after afterSeq is there.
    let first: number | undefined;
    let events: StoredEvent[] = [];
    let hasMore: boolean;
    if (limit > 0) {
      const { msgs, more } = await this.readRange(stream, subject, afterSeq + 1, limit);
      first = msgs[0]?.seq;
      events = distinctEvents(channel, msgs, this.dedupeWindowMs(stream));
      hasMore = more;
    } else {
      first = (await this.getMsg(stream, { seq: afterSeq + 1, next_by_subj: subject }))?.seq;
      hasMore = first !== undefined;
    }
    const truncated =
      first === afterSeq + 1 ? false : await this.mayHaveLost(stream, subject, afterSeq);
    return { events, hasMore, truncated };
  }

  private async mayHaveLost(stream: string, subject: string, afterSeq: number): Promise<boolean> {
    let info: Awaited<ReturnType<JetStreamManager["streams"]["info"]>>;
    try {
      info = await this.jsm.streams.info(stream, { subjects_filter: subject });
    } catch (err) {
      if (isStreamNotFound(err)) return false;
      throw wrapError("stream info", err);
    }
    const count = info.state.subjects?.[subject] ?? 0;
    if (count > 0) {
      const oldest = await this.getMsg(stream, { seq: 1, next_by_subj: subject });
      if (oldest && oldest.seq <= afterSeq) return false;
    }
    const perSubject = info.config.max_msgs_per_subject;
    const atLimit = perSubject > 0 && count >= perSubject;
    const aged = info.config.max_age > 0 && info.state.first_seq > afterSeq + 1;
    return atLimit || aged;
  }

  /**
   * The newest `limit` events before `beforeSeq`. JetStream 2.9 cannot read a
   * subject backwards (no reverse consumer, no batch direct get), so this
   * reads forward from a start seq estimated from the channel's density in
   * the stream (retained count over the seq span), widening the window until
   * it holds `limit` events or reaches the channel's oldest retained event.
   * A channel at least as dense as the estimate costs one read of about
   * 1.5 x `limit` events, however long its history.
   */
  async historyBefore(
    stream: string,
    subject: string,
    channel: string,
    beforeSeq: number | undefined,
    limit: number,
  ): Promise<HistoryPage> {
    const oldest = await this.getMsg(stream, { seq: 1, next_by_subj: subject });
    const empty = { events: [], hasMore: false, truncated: false };
    if (!oldest || (beforeSeq !== undefined && oldest.seq >= beforeSeq)) return empty;
    if (limit === 0) return { events: [], hasMore: true, truncated: false };
    let info: Awaited<ReturnType<JetStreamManager["streams"]["info"]>>;
    try {
      info = await this.jsm.streams.info(stream, { subjects_filter: subject });
    } catch (err) {
      if (isStreamNotFound(err)) return empty;
      throw wrapError("stream info", err);
    }
    // Exclusive upper bound; events stored from now on are not part of this page.
    const upper = Math.min(beforeSeq ?? Infinity, info.state.last_seq + 1);
    const count = Math.max(1, info.state.subjects?.[subject] ?? 1);
    const density = count / Math.max(1, info.state.last_seq - oldest.seq + 1);
    let window = count <= 2 * limit ? Infinity : Math.ceil((limit / density) * 1.5);
    for (;;) {
      const from = Math.max(oldest.seq, upper - window);
      const { msgs } = await this.readRange(stream, subject, from, Number.MAX_SAFE_INTEGER, {
        stopBeforeSeq: upper,
      });
      const events = distinctEvents(channel, msgs, this.dedupeWindowMs(stream));
      if (events.length >= limit || from === oldest.seq) {
        const page = events.slice(-limit);
        return {
          events: page,
          // Anything retained before `from` is older than the page as well.
          hasMore: events.length > page.length || from > oldest.seq,
          truncated: false,
        };
      }
      window *= 4;
    }
  }
}
