import type { KvStore } from "../../../../../shared/src/engine/engine.js";
import { HeraldRequestError } from "./codes.js";

/** Acked seqs remembered per (user, stream) beyond the contiguous floor. */
const MAX_ACKED = 5000;

/** At-least-once state per (user, stream): delivery starts after `start`. */
interface AckState {
  start: number;
  acked: number[];
}

/** What an at-least-once subscribe replays: from where, and what to leave out. */
export interface AtLeastOnceReplay {
  afterSeq: number;
  skip: (e: { seq: number }) => boolean;
}

/**
 * Unacked events since the first at-least-once subscribe come again;
 * anything after `lastSeq` is replayed whether acked or not, as a plain
 * replay would.
 */
export async function atLeastOnceReplay(
  acks: KvStore,
  key: string,
  lastSeqOfStream: () => Promise<number>,
  lastSeq: number | undefined,
): Promise<AtLeastOnceReplay> {
  const state = await loadAckState(acks, key, lastSeqOfStream);
  const acked = new Set(state.acked);
  return {
    afterSeq: lastSeq === undefined ? state.start : Math.min(state.start, lastSeq),
    skip: (e) => acked.has(e.seq) && (lastSeq === undefined || e.seq <= lastSeq),
  };
}

/** Records an ack; compare-and-set so acks from other connections are not lost. */
export async function recordAck(acks: KvStore, key: string, seq: number): Promise<void> {
  for (;;) {
    const entry = await acks.get(key);
    if (!entry)
      throw new HeraldRequestError(
        "invalid_payload",
        "no at-least-once subscription to this stream",
      );
    const state = entry.value as unknown as AckState;
    if (seq <= state.start || state.acked.includes(seq)) return;
    const acked = [...state.acked, seq].sort((a, b) => a - b).slice(-MAX_ACKED);
    if ((await acks.update(key, { start: state.start, acked }, entry.revision)) !== null) return;
  }
}

async function loadAckState(
  kv: KvStore,
  key: string,
  lastSeq: () => Promise<number>,
): Promise<AckState> {
  for (;;) {
    const entry = await kv.get(key);
    if (entry) return entry.value as unknown as AckState;
    const state: AckState = { start: await lastSeq(), acked: [] };
    if ((await kv.create(key, { start: state.start, acked: [] })) !== null) return state;
  }
}
