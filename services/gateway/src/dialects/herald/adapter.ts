import type { Connection } from "../../core/connection.js";
import { defineDialect, type Failure, type Run } from "../../core/define-dialect.js";
import type { Dialect, DialectContext } from "../../core/dialect.js";
import { HeldFrames } from "../../core/held-frames.js";
import { decode, encode, type Ref } from "./codec.js";
import { HeraldClose, type HeraldCode, HeraldRequestError } from "./codes.js";
import { HeraldCommands } from "./commands.js";
import { createSignIn } from "./sign-in.js";
import type { HeraldConnection } from "./state.js";

/** The Herald dialect at `/ws?key=&token=&user_id=&streams=`. */
export function createHeraldDialect(ctx: DialectContext): Dialect {
  const commands = new HeraldCommands(ctx);

  const send = (conn: Connection, ref: Ref, code: HeraldCode, message: string) => {
    ctx.metrics.errors.inc({ dialect: "herald", code });
    conn.send(encode.error(ref, code, message));
  };

  const failure = (f: Failure<HeraldRequestError>): [HeraldCode, string] => {
    switch (f.kind) {
      case "request":
        return [f.error.code, f.error.message];
      case "refused":
        return f.reason === "channel_full"
          ? ["stream_full", `stream ${f.channel} is full`]
          : ["rate_limited", f.message];
      default:
        return ["internal", f.message];
    }
  };

  const handle = (conn: Connection, s: HeraldConnection, text: string, run: Run<Ref>) => {
    const h = s.ready;
    if (!h) return;
    const decoded = decode(text);
    if (!decoded.ok) return send(conn, decoded.ref, decoded.code, decoded.message);
    run(decoded.ref, () => commands.handle(h, decoded.ref, decoded.command));
  };

  const signIn = createSignIn(ctx, commands, send);

  return defineDialect<HeraldConnection, Ref, HeraldRequestError>({
    name: "herald",
    route: "/ws",
    appKeyOf: (_param, query) => query.get("key") ?? undefined,
    isRequestError: (err): err is HeraldRequestError => err instanceof HeraldRequestError,
    open(conn, run) {
      const s: HeraldConnection = { early: new HeldFrames(), ready: undefined };
      void signIn(conn, s, () => s.early.release((text) => handle(conn, s, text, run)));
      return s;
    },
    message(conn, s, text, run) {
      const held = s.early.offer(text);
      if (held === "full") send(conn, undefined, "rate_limited", "too many frames before auth_ok");
      else if (held === "run") handle(conn, s, text, run);
    },
    fail(conn, _s, ref, f) {
      const [code, message] = failure(f);
      send(conn, ref, code, message);
    },
    reject(conn, _s, problem) {
      if (problem === "rate_limited")
        return send(conn, undefined, "rate_limited", "too many messages");
      if (problem === "too_large")
        return send(conn, undefined, "invalid_payload", "frame too large");
      if (problem === "oversized") return conn.close(HeraldClose.tooLarge, "frame too large");
      return send(conn, undefined, "invalid_payload", "frame is not valid UTF-8");
    },
    slowConsumer: [HeraldClose.slowConsumer, "slow consumer: reconnect and replay with last_seq"],
    drain: [HeraldClose.goingAway, "server restarting: reconnect"],
    deliveryGap: [
      HeraldClose.goingAway,
      "live delivery interrupted: reconnect and replay with last_seq",
    ],
    closed(_conn, s) {
      if (s.ready) commands.closed(s.ready);
    },
  });
}
