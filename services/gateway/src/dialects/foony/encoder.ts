/** How Foony shows a channel's deliveries. */
import type { ChannelEncoder } from "../../core/hub.js";
import { encode } from "./codec.js";

/** Every Foony subscriber gets the same bytes for a delivery, so uWS fans them out. */
export const foonyEncoder: ChannelEncoder = {
  topic: "foony",
  encode: (channel, d) => {
    if (d.type === "event") return encode.msg(d.event);
    if (d.signal.kind === "entry") return encode.presEvt(channel, d.signal, Date.now());
    // Ephemeral events of other dialects carry no messageId, which every Foony msg needs.
    return null;
  },
};
