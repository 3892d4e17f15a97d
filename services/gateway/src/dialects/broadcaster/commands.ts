import { authorize, currentGrant, signIn } from "./access.js";
import { encode, type Request, type RequestId, rfc3339 } from "./codec.js";
import { BroadcasterRequestError } from "./codes.js";
import type { BroadcasterConnection } from "./state.js";
import { drop, subscribe } from "./subscriptions.js";

/** Handlers for Broadcaster requests. Errors are thrown as BroadcasterRequestError. */
export async function handle(s: BroadcasterConnection, id: RequestId, r: Request): Promise<void> {
  const { session } = s;
  const { conn } = session;
  switch (r.method) {
    case "ping":
      conn.send(encode.result(id, { timestamp: rfc3339(Date.now()) }));
      return;
    case "auth":
      return signIn(s, id, r.token);
    case "subscribe": {
      const grant = authorize(s, r.channel, "subscribe");
      return subscribe(s, id, r.channel, grant.userId);
    }
    case "unsubscribe":
      currentGrant(s);
      if (!s.subscriptions.has(r.channel))
        throw new BroadcasterRequestError("NotFound", `not subscribed to ${r.channel}`);
      drop(s, r.channel);
      conn.send(encode.result(id, { success: true }));
      return;
    case "publish": {
      const grant = authorize(s, r.channel, "publish");
      const published = await session.publish(r.channel, {
        name: r.event,
        data: r.payload,
        userId: grant.userId,
      });
      conn.send(encode.result(id, encode.published(published.id, published.time)));
      return;
    }
  }
}

/** The token's timer ends with the connection; subscriptions and presence end in the core. */
export function closed(s: BroadcasterConnection): void {
  s.cancelExpiry?.();
  s.subscriptions.clear();
}
