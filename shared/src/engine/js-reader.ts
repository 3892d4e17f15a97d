/**
 * Reads of one app's stream: single messages, ranges of one channel, history
 * pages. Nothing here needs a 2.10+ server (no batch direct get, no
 * multi-filter consumers).
 *
 * Single-message reads use STREAM.MSG.GET (answered by the stream leader, so a
 * read after an acknowledged publish sees it) rather than direct get (any
 * replica, possibly behind).
 */
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { HistoryPage, StoredEvent } from "./engine.js";
import { decodeEvent, isStreamNotFound, JetStreamEngineError, wrapError } from "./js-codec.js";

export interface RawMsg {
  subject: string;
  seq: number;
  data: Uint8Array;
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

const NO_MESSAGE = 10037;
const STREAM_NOT_FOUND = 10059;
const NS_PER_SEC = 1_000_000_000;

export class StreamReader {
  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly timeoutMs: number,
  ) {}

  /** One message, or null when there is none (or no such stream). */
  async getMsg(stream: string, req: MsgGet): Promise<RawMsg | null> {
    let reply: unknown;
    try {
      const r = await this.nc.request(`$JS.API.STREAM.MSG.GET.${stream}`, JSON.stringify(req), {
        timeout: this.timeoutMs,
      });
      reply = r.json();
    } catch (err) {
      throw wrapError("stream read", err);
    }
    const body = reply as {
      error?: { code: number; err_code: number; description: string };
      message?: { subject: string; seq: number; data?: string };
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
    return { subject: m.subject, seq: m.seq, data: Buffer.from(m.data ?? "", "base64") };
  }

  async lastSeq(stream: string, subject: string): Promise<number> {
    return (await this.getMsg(stream, { last_by_subj: subject }))?.seq ?? 0;
  }

  /**
   * Messages of `subject` with seq >= fromSeq, oldest first, at most `max`,
   * read through a short-lived ephemeral consumer (deleted afterwards; its
   * inactive threshold reaps it should the delete be lost). `remaining` is
   * how many matching messages existed from `fromSeq` when reading began.
   */
  async readRange(
    stream: string,
    subject: string,
    fromSeq: number,
    max: number,
    stopBeforeSeq = Infinity,
  ): Promise<{ msgs: RawMsg[]; remaining: number }> {
    let ci: Awaited<ReturnType<JetStreamManager["consumers"]["add"]>>;
    try {
      ci = await this.jsm.consumers.add(stream, {
        filter_subject: subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: Math.max(1, fromSeq),
        ack_policy: AckPolicy.None,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: 30 * NS_PER_SEC,
      });
    } catch (err) {
      if (isStreamNotFound(err)) return { msgs: [], remaining: 0 };
      throw wrapError("history read", err);
    }
    const msgs: RawMsg[] = [];
    try {
      const want = Math.min(max, ci.num_pending);
      if (want > 0) {
        const consumer = this.js.consumers.getConsumerFromInfo(ci);
        const iter = await consumer.fetch({ max_messages: want, expires: this.timeoutMs });
        let reachedStop = false;
        let reachedEnd = false;
        for await (const m of iter) {
          if (m.seq >= stopBeforeSeq) {
            reachedStop = true;
            break;
          }
          msgs.push({ subject: m.subject, seq: m.seq, data: m.data });
          if (m.info.pending === 0) reachedEnd = true;
          if (msgs.length >= want || reachedEnd) break;
        }
        if (!reachedStop && !reachedEnd && msgs.length < want) {
          // The fetch expired short of what num_pending promised: a partial
          // page would wrongly read as "no more events".
          throw new JetStreamEngineError(`history read returned ${msgs.length}/${want}`);
        }
      }
    } catch (err) {
      throw wrapError("history read", err);
    } finally {
      this.jsm.consumers.delete(stream, ci.name).catch(() => {
        // Best effort: the inactive threshold removes it anyway.
      });
    }
    return { msgs, remaining: ci.num_pending };
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
      const { msgs, remaining } = await this.readRange(stream, subject, first.seq, limit);
      events = msgs.map((m) => decodeEvent(channel, m.seq, m.data));
      hasMore = remaining > msgs.length;
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
      const { msgs } = await this.readRange(stream, subject, from, Number.MAX_SAFE_INTEGER, upper);
      if (msgs.length >= limit || from === oldest.seq) {
        const page = msgs.slice(-limit);
        return {
          events: page.map((m) => decodeEvent(channel, m.seq, m.data)),
          // Anything retained before `from` is older than the page as well.
          hasMore: msgs.length > page.length || from > oldest.seq,
          truncated: false,
        };
      }
      window *= 4;
    }
  }
}
