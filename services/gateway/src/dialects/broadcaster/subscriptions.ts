import type { ChannelEncoder } from "../../core/hub.js";
import { encode, type RequestId, rfc3339 } from "./codec.js";
import { BroadcasterRequestError } from "./codes.js";
import type { BroadcasterConnection, Subscription } from "./state.js";

/** Subscribes to `channel` as `userId`; replies with the subscription's id once live. */
export async function subscribe(
  s: BroadcasterConnection,
  id: RequestId,
  channel: string,
  userId: string,
): Promise<void> {
  const { session } = s;
  const { conn } = session;
  if (s.subscriptions.has(channel))
    throw new BroadcasterRequestError("AlreadyExists", `already subscribed to ${channel}`);
  // Before numbering: a refused subscribe takes no subscription id.
  session.checkSubscriptionLimit(channel);
  s.subscriptionCounter += 1;
  const sub: Subscription = { id: `sub-${s.subscriptionCounter}`, seq: 0 };
  s.subscriptions.set(channel, sub);
  // Per subscriber (no topic): each subscription numbers its own messages.
  const encoder: ChannelEncoder = {
    encode: (_channel, d) => (d.type === "event" ? encode.message(d.event, ++sub.seq) : null),
  };
  let replied = false;
  const reply = () => {
    if (replied) return;
    replied = true;
    conn.send(encode.result(id, { subscriptionId: sub.id, timestamp: rfc3339(Date.now()) }));
  };
  try {
    // Counted for subscriber counts and channel listings; Broadcaster has no members.
    await session.join(channel, {
      encoder,
      // Its reply carries nothing presence answers: the join does not wait for it.
      presence: { member: false, userId, answer: false },
      beforeEvents: reply,
    });
  } catch (err) {
    // The session undid the join (and told presence).
    if (s.subscriptions.get(channel) === sub) s.subscriptions.delete(channel);
    throw err;
  }
  // An unsubscribe that overtook the join cancels it before beforeEvents; still answer.
  reply();
}

export function drop(s: BroadcasterConnection, channel: string): void {
  s.subscriptions.delete(channel);
  s.session.leave(channel);
}

/** Ends a subscription the client did not cancel, and tells it why. */
export function revoke(s: BroadcasterConnection, channel: string, why: BroadcasterRequestError) {
  const sub = s.subscriptions.get(channel);
  if (!sub) return;
  drop(s, channel);
  s.session.conn.send(encode.unsubscribed(channel, sub.id, why.code, why.message));
}
