/**
 * Reads of one app's stream: single messages, ranges of one channel, history
 * pages. Nothing here needs a 2.10+ server (no batch direct get, no
 * multi-filter consumers).
 *
 * Every read answers what the stream leader holds. Single messages come from
 * STREAM.MSG.GET (answered by the leader, so a read after an acknowledged
 * publish sees it) rather than direct get (any replica, possibly behind);
 * ranges from the leader too (readRange).
 */
import {
  AckPolicy,
  type ConsumerInfo,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { StoredEvent } from "../model.js";
import { Requests } from "../nats/requests.js";
import { EngineUnavailableError, type HistoryPage } from "./engine.js";
import {
  decodeEvent,
  isStreamNotFound,
  JetStreamEngineError,
  msgIdOfHeaders,
  wrapError,
} from "./js-codec.js";
import { distinctEvents } from "./js-repeats.js";

export interface RawMsg {
  subject: string;
  seq: number;
  data: Uint8Array;
  /** The publish's Nats-Msg-Id (see js-repeats.ts). */
  msgId?: string | undefined;
}

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

/** A fetch from a just-created consumer found no one serving it. */
class ConsumerGoneError extends EngineUnavailableError {
  override name = "ConsumerGoneError";
}

/** The client reports a pull nobody answered as a status error with code 503. */
function isNoResponders(err: unknown): boolean {
  return (
    err instanceof Error &&
    err.name === "JetStreamStatusError" &&
    (err as { code?: unknown }).code === 503
  );
}

const NO_MESSAGE = 10037;
const STREAM_NOT_FOUND = 10059;
const NS_PER_SEC = 1_000_000_000;
const MSG_ID = "Nats-Msg-Id";
const PLACEMENT_ATTEMPTS = 12;
/** Leader requests in flight at once when every message is read from it. */
const PIPELINE = 128;

export class StreamReader {
  /** STREAM.MSG.GET and STREAM.INFO are the hot requests (position checks, start seqs, gap fills). */
  private readonly requests: Requests;

  constructor(
    nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly timeoutMs: number,
  ) {
    this.requests = new Requests(nc, timeoutMs);
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
   */
  private async readThroughLeader(
    range: Range,
    from: number,
    want: number,
  ): Promise<{ msgs: RawMsg[]; more: boolean }> {
    let leader: Promise<string | undefined> | undefined;
    let hints: number[] = [];
    for (let attempt = 1; attempt <= PLACEMENT_ATTEMPTS; attempt++) {
      leader ??= this.streamLeader(range.stream);
      const [ci, lead] = await Promise.all([this.createConsumer(range, from), leader]);
      if (!ci) return { msgs: [], more: false };
      try {
        // Both are absent on a server that is not clustered.
        if (ci.cluster?.leader === lead) return await this.drain(ci, range, want);
        if (lead === undefined) throw new EngineUnavailableError("stream has no leader");
        if (attempt === PLACEMENT_ATTEMPTS) {
          hints = (await this.drain(ci, range, want)).msgs.map((m) => m.seq);
        }
      } catch (err) {
        // Right after a create, or after its server came back, the consumer's
        // pull subject may not be known to our server yet: try another one.
        if (!(err instanceof ConsumerGoneError) || attempt === PLACEMENT_ATTEMPTS) throw err;
      } finally {
        this.jsm.consumers.delete(range.stream, ci.name).catch(() => {
          // Best effort: the inactive threshold removes it anyway.
        });
      }
    }
    return this.chainOnLeader(range, from, want, hints);
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
  ): Promise<{ msgs: RawMsg[]; more: boolean }> {
    const msgs: RawMsg[] = [];
    const take = Math.min(want, ci.num_pending);
    let reachedStop = false;
    try {
      if (take > 0) {
        const consumer = this.js.consumers.getConsumerFromInfo(ci);
        const iter = await consumer.fetch({ max_messages: take, expires: this.timeoutMs });
        let reachedEnd = false;
        for await (const m of iter) {
          if (m.seq >= range.stop) {
            reachedStop = true;
            break;
          }
          msgs.push({
            subject: m.subject,
            seq: m.seq,
            data: m.data,
            msgId: m.headers?.get(MSG_ID) || undefined,
          });
          if (m.info.pending === 0) reachedEnd = true;
          if (msgs.length >= take || reachedEnd) break;
        }
        if (!reachedStop && !reachedEnd && msgs.length < take) {
          // The fetch expired short of what num_pending promised: a partial
          // page would wrongly read as "no more events".
          throw new JetStreamEngineError(`history read returned ${msgs.length}/${take}`);
        }
      }
    } catch (err) {
      if (isNoResponders(err)) throw new ConsumerGoneError("history read: no consumer answered");
      throw wrapError("history read", err);
    }
    return { msgs, more: !reachedStop && ci.num_pending > msgs.length };
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
    const first = await this.getMsg(stream, { seq: afterSeq + 1, next_by_subj: subject });
    let events: StoredEvent[] = [];
    let hasMore = false;
    if (first && limit > 0) {
      const { msgs, more } = await this.readRange(stream, subject, first.seq, limit);
      events = distinctEvents(channel, msgs, this.dedupeWindowMs(stream));
      hasMore = more;
    } else if (first) {
      hasMore = true;
    }
    const truncated =
      first?.seq === afterSeq + 1 ? false : await this.mayHaveLost(stream, subject, afterSeq);
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
    if (limit === 0) return { ...empty, hasMore: true };
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
