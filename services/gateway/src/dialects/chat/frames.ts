import type { Run } from "../../core/define-dialect.js";
import { decode, EPHEMERAL_ID, encode } from "./codec.js";
import type { ChatReplies } from "./replies.js";
import type { ChatRequests } from "./requests.js";
import type { ChatSession } from "./state.js";

/** The frames of a signed-in connection: acks, typing and requests (run by id). */
export class ChatFrames {
  constructor(
    private readonly replies: ChatReplies,
    private readonly requests: ChatRequests,
  ) {}

  handle(c: ChatSession, text: string, run: Run<string>) {
    const { session } = c;
    const { conn, userId } = session;
    // A frame can beat the expiry timer (a busy loop runs timers late); it must not run.
    if (Date.now() >= c.expiresAtMs) return this.replies.expired(conn);
    const decoded = decode(text);
    if (!decoded.ok) return this.replies.error(conn, decoded.id, decoded.code, decoded.message);
    const frame = decoded.frame;
    switch (frame.type) {
      case "ack":
        if (frame.seq === EPHEMERAL_ID) return;
        if (frame.seq > c.maxDelivered)
          return this.replies.error(
            conn,
            null,
            "invalid_payload",
            `event ${frame.seq} was not sent to you`,
          );
        c.acks.ack(frame.seq);
        return;
      case "typing":
        if (frame.chatId === userId)
          return this.replies.error(conn, null, "invalid_payload", "chatId is yourself");
        if (!c.typing.take())
          return this.replies.error(conn, null, "rate_limited", "too many typing events");
        session.signalUser(frame.chatId, {
          kind: "typing",
          userId,
          active: true,
          excludeConnectionId: conn.id,
        });
        return;
      case "request": {
        const { id, request } = frame;
        run(id, async () => {
          const payload = await this.requests.handle(session, request, Date.now());
          conn.send(encode.response(id, Date.now(), payload));
        });
        return;
      }
    }
  }
}
