import type { HeraldEvent } from "./wire.js";

export interface HistoryPage {
  events: HeraldEvent[];
  has_more: boolean;
}

export interface FetchParams {
  after_seq?: number;
  before_seq?: number;
  limit: number;
}

export interface HistoryOptions {
  /**
   * `backward` (default): newest page first, then older ones, starting before
   * `beforeSeq` (or at the newest event). `forward`: oldest first, starting
   * after `afterSeq` (default 0: the oldest event still kept).
   */
  direction?: "backward" | "forward";
  beforeSeq?: number;
  afterSeq?: number;
  /** Events per `events.fetch` (1–1000, default 50). */
  pageSize?: number;
}

/**
 * Pages of a stream's history, one `events.fetch` each; events inside a page
 * are oldest first in both directions. Stops when the gateway says there is
 * no more (`has_more: false`).
 */
export async function* historyPages(
  fetchPage: (p: FetchParams) => Promise<HistoryPage>,
  options: HistoryOptions = {},
): AsyncGenerator<HeraldEvent[], void, undefined> {
  const limit = options.pageSize ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new RangeError("pageSize must be an integer from 1 to 1000");
  }
  if (options.direction === "forward") {
    let after = options.afterSeq ?? 0;
    for (;;) {
      const page = await fetchPage({ after_seq: after, limit });
      const last = page.events[page.events.length - 1];
      if (page.events.length > 0) yield page.events;
      if (!page.has_more || !last) return;
      after = last.seq;
    }
  }
  let before = options.beforeSeq;
  for (;;) {
    const page = await fetchPage(before === undefined ? { limit } : { before_seq: before, limit });
    const first = page.events[0];
    if (page.events.length > 0) yield page.events;
    if (!page.has_more || !first) return;
    before = first.seq;
  }
}
