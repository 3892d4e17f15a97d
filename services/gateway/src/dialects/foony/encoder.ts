/**
 * How Foony shows a channel's deliveries, and the encoder a new subscriber
 * uses until it has the channel's presence set.
 */
import type { Delivery } from "../../../../../shared/src/engine/engine.js";
import type { ChannelEncoder } from "../../core/hub.js";
import { encode } from "./codec.js";

/** Every Foony subscriber gets the same bytes for a delivery, so uWS fans them out. */
export const foonyEncoder: ChannelEncoder = {
  topic: "foony",
  encode: (channel, d) => {
    if (d.type === "event") return encode.msg(d.event);
    if (d.signal.kind === "presence") return encode.presEvt(channel, d.signal, Date.now());
    // Ephemeral events of other dialects carry no messageId, which every Foony msg needs.
    return null;
  },
};

/** Presence changes held per subscriber while its presence set is fetched. */
const MAX_HELD = 10_000;

/**
 * A new subscriber's own encoder (no topic: called for it alone) while the
 * channel's presence set is being fetched. Live presence changes are held so
 * they reach the client after the set: a leave that raced the fetch then
 * always comes after the enter it cancels, and the client is left with no
 * ghost. Messages pass straight through.
 */
export class PresenceSyncEncoder implements ChannelEncoder {
  private held: Delivery[] | null = [];

  encode(channel: string, d: Delivery): string | null {
    // Past the bound memory wins over order (only a ghost-risk, never a lost message).
    if (d.type === "signal" && d.signal.kind === "presence" && this.held) {
      if (this.held.length < MAX_HELD) {
        this.held.push(d);
        return null;
      }
    }
    return foonyEncoder.encode(channel, d);
  }

  /** Stops holding; returns the held frames, in arrival order. */
  release(channel: string): string[] {
    const held = this.held ?? [];
    this.held = null;
    return held.flatMap((d) => foonyEncoder.encode(channel, d) ?? []);
  }
}
