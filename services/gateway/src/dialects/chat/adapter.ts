import { defineDialect, type Failure } from "../../core/define-dialect.js";
import type { Dialect, DialectContext } from "../../core/dialect.js";
import { HeldFrames } from "../../core/held-frames.js";
import { ChatClose, type ChatCode, ChatRequestError } from "./codes.js";
import { ChatFrames } from "./frames.js";
import { ChatReplies } from "./replies.js";
import { ChatRequests } from "./requests.js";
import { signIn } from "./sign-in.js";
import type { ChatConnection } from "./state.js";

/** The Chat dialect at `/chat/:key?token=JWT` (protocols/chat.md). */
export function createChatDialect(ctx: DialectContext): Dialect {
  const replies = new ChatReplies(ctx.metrics);
  const frames = new ChatFrames(replies, new ChatRequests());

  const failure = (f: Failure<ChatRequestError>): [ChatCode, string] =>
    f.kind === "request" ? [f.error.code, f.error.message] : ["internal", f.message];

  return defineDialect<ChatConnection, string, ChatRequestError>({
    name: "chat",
    route: "/chat/:key",
    appKeyOf: (param) => param,
    isRequestError: (err): err is ChatRequestError => err instanceof ChatRequestError,
    open(conn, run) {
      const s: ChatConnection = { early: new HeldFrames(), ready: undefined };
      const release = () =>
        s.early.release((text) => {
          if (s.ready) frames.handle(s.ready, text, run);
        });
      signIn(ctx, replies, conn, s, release).catch((err: unknown) => {
        if (conn.closed) return;
        conn.log.error({ err }, "chat connection setup failed");
        // The client cannot be told it is connected without its inbox: let it retry.
        conn.close(ChatClose.tryAgainLater, "internal error; reconnect");
      });
      return s;
    },
    message(conn, s, text, run) {
      const held = s.early.offer(text);
      if (held === "full")
        replies.error(conn, null, "rate_limited", "too many frames before the inbox is ready");
      else if (held === "run" && s.ready) frames.handle(s.ready, text, run);
    },
    fail(conn, _s, id, f) {
      const [code, message] = failure(f);
      replies.error(conn, id, code, message);
    },
    reject(conn, _s, problem) {
      if (problem === "rate_limited")
        return replies.error(conn, null, "rate_limited", "too many frames");
      if (problem === "too_large")
        return replies.error(conn, null, "invalid_payload", "frame too large");
      if (problem === "oversized") return conn.close(ChatClose.tooLarge, "frame too large");
      return replies.error(conn, null, "invalid_payload", "frame is not valid UTF-8");
    },
    slowConsumer: [ChatClose.slowConsumer, "slow consumer: reconnect; unacked events come again"],
    drain: [ChatClose.goingAway, "server restarting: reconnect"],
    deliveryGap: [
      ChatClose.goingAway,
      "live delivery interrupted: reconnect; unacked events come again",
    ],
  });
}
