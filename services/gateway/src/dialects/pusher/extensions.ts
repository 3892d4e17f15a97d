/**
 * Glue for the Sockudo extensions (tag filters, delta compression): which
 * encoder a Pusher subscription uses, and the delta opt-in.
 */
import { channelKind } from "../../../../../shared/src/channels.js";
import type { ChannelEncoder } from "../../core/hub.js";
import { encode, encodeDelivery } from "./codec.js";
import { DeltaBases } from "./delta.js";
import { matchesFilter } from "./filter.js";
import type { PusherReplies } from "./replies.js";
import type { PusherConnection } from "./state.js";

/** Every plain Pusher subscriber of a channel gets the same bytes, so uWS fans them out. */
export const sharedEncoder: ChannelEncoder = { topic: "pusher", encode: encodeDelivery };

/**
 * How `channel` reaches this connection. Filters and delta bases are
 * per-connection state, so such subscriptions leave the shared topic (an
 * encoder without `topic` is called per subscriber); everyone else keeps
 * the encode-once fast path and today's frames.
 */
export function encoderFor(s: PusherConnection, channel: string): ChannelEncoder {
  const filter = s.filters?.get(channel);
  // Ciphertext of private-encrypted- channels does not diff: deltas would only cost CPU.
  const deltas = channelKind(channel).encrypted ? undefined : s.deltas;
  if (!filter && !deltas) return sharedEncoder;
  return {
    encode(ch, d) {
      // Signals (client events, members, counts) are neither filtered nor diffed, as in Sockudo.
      if (d.type !== "event") return encodeDelivery(ch, d);
      if (filter && !matchesFilter(filter, d.event.tags)) return null;
      const frame = encodeDelivery(ch, d);
      if (frame === null || !deltas) return frame;
      return deltas.encode(ch, d.event.name, d.event.seq, frame);
    },
  };
}

/**
 * `pusher:enable_delta_compression`: from now on every subscribed channel
 * (and every later one) gets deltas. Sockudo's client sends this after its
 * subscribes, so channels already live are moved off the shared topic.
 */
export function enableDelta(
  replies: PusherReplies,
  s: PusherConnection,
  algorithms: string[] | undefined,
): void {
  const { conn } = s.session;
  if (algorithms && !algorithms.includes("fossil")) {
    replies.error(conn, null, "Delta compression: only the fossil algorithm is supported");
    return;
  }
  if (!s.deltas) {
    s.deltas = new DeltaBases();
    for (const channel of conn.channels) s.session.setEncoder(channel, encoderFor(s, channel));
  }
  conn.send(encode.deltaCompressionEnabled());
}

/** Forgets a channel's filter and delta base (unsubscribed, or the subscribe failed). */
export function forgetChannel(s: PusherConnection, channel: string): void {
  s.filters?.delete(channel);
  s.deltas?.drop(channel);
}
