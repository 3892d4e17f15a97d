/**
 * Creating a stream, or a KV bucket (which is one), from several processes at
 * once. Gateways and presence replicas start together and each creates what
 * it needs; nats-server 2.9 does not always answer the losers of a concurrent
 * create with the stream: it may say "subjects overlap with an existing
 * stream" (10065, the winner's stream already claims the subjects) or "name
 * already in use" (10058). Both mean the stream exists now, so the loser
 * opens or updates it instead of failing its start.
 */
import { JetStreamApiError, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import type { KV, Kvm, KvOptions } from "@nats-io/kv";

const STREAM_NAME_IN_USE = 10058;
const SUBJECTS_OVERLAP = 10065;
const STREAM_NOT_FOUND = 10059;

function hasCode(err: unknown, ...codes: number[]): boolean {
  return err instanceof JetStreamApiError && codes.includes(err.code);
}

export function isStreamNotFound(err: unknown): boolean {
  return hasCode(err, STREAM_NOT_FOUND);
}

/** A create that failed because the stream exists (made by another process or earlier). */
function existsAlready(err: unknown): boolean {
  return hasCode(err, STREAM_NAME_IN_USE, SUBJECTS_OVERLAP);
}

/**
 * Creates the stream, or updates it to `config` when it exists with other
 * settings (new limits, or another process created it first with defaults
 * filled in differently). An overlap with a stream of another name is the
 * operator's to resolve: that create error is thrown as it came.
 */
export async function addOrUpdateStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
): Promise<void> {
  try {
    await jsm.streams.add(config);
    return;
  } catch (err) {
    if (!existsAlready(err)) throw err;
    try {
      await jsm.streams.update(config.name, config);
    } catch (updateErr) {
      throw isStreamNotFound(updateErr) ? err : updateErr;
    }
  }
}

/** `kvm.create` (create-or-open) that opens the bucket when a concurrent creator won. */
export async function createOrOpenKv(
  kvm: Kvm,
  name: string,
  opts: Partial<KvOptions>,
): Promise<KV> {
  try {
    return await kvm.create(name, opts);
  } catch (err) {
    if (!existsAlready(err)) throw err;
    // The stream is there now: create's own lookup finds and opens it.
    return await kvm.create(name, opts);
  }
}
