import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { appWildcard, streamName } from "../subjects.js";

/** An app stream as an operator sees it (JetStream stream info). */
export interface StreamState {
  appId: string;
  stream: string;
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  consumers: number;
  /** Distinct channels holding events. */
  subjects: number;
  replicas: number;
  leader?: string | undefined;
  /** The other replicas: whether each is current, and how far behind. */
  followers: { name: string; current: boolean; offline: boolean; lag: number }[];
  error?: string | undefined;
}

/**
 * Reads the app streams' info: every stream on an app's subjects, so each
 * partition of an app spread over several (`streamPartitions`), and streams
 * of a partition count the engine refused, show. Read-only: the engine
 * alone creates and writes streams, this only reports their state. A stream
 * that cannot be read is returned with `error` rather than failing the
 * others; an app with none found shows its one-stream name with the error.
 */
export async function streamStates(
  nc: NatsConnection,
  appIds: readonly string[],
): Promise<StreamState[]> {
  const jsm = await jetstreamManager(nc, { timeout: 2000 });
  const streams = await Promise.all(
    appIds.map(async (appId) => {
      const names: string[] = [];
      try {
        for await (const name of jsm.streams.names(appWildcard(appId))) names.push(name);
      } catch {
        // Reported below, by the info read of the one-stream name.
      }
      if (names.length === 0) names.push(streamName(appId));
      names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
      return names.map((stream) => ({ appId, stream }));
    }),
  );
  return Promise.all(
    streams.flat().map(async ({ appId, stream }): Promise<StreamState> => {
      try {
        const info = await jsm.streams.info(stream);
        const s = info.state;
        return {
          appId,
          stream,
          messages: s.messages,
          bytes: s.bytes,
          firstSeq: s.first_seq,
          lastSeq: s.last_seq,
          consumers: s.consumer_count,
          subjects: s.num_subjects ?? 0,
          replicas: info.config.num_replicas,
          leader: info.cluster?.leader,
          followers: (info.cluster?.replicas ?? []).map((r) => ({
            name: r.name,
            current: r.current,
            offline: r.offline,
            lag: r.lag,
          })),
        };
      } catch (err) {
        return {
          appId,
          stream,
          messages: 0,
          bytes: 0,
          firstSeq: 0,
          lastSeq: 0,
          consumers: 0,
          subjects: 0,
          replicas: 0,
          followers: [],
          error: err instanceof Error ? err.message : String(err),
        };
      }
    }),
  );
}
