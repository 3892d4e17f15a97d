import type { Connection } from "../../core/connection.js";
import type { Failure } from "../../core/define-dialect.js";
import type { Metrics } from "../../metrics.js";
import { encode } from "./codec.js";
import { PusherCodeText } from "./codes.js";

/**
 * A subscribe the dialect refuses (bad auth, bad filter, bad channel_data):
 * answered with `pusher:subscription_error` on the channel, which pusher-js
 * emits on that channel object.
 */
export class PusherSubscriptionError extends Error {
  override name = "PusherSubscriptionError";
  constructor(
    readonly channel: string,
    readonly type: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The text Pusher gives a close code. */
export function codeText(code: number): string {
  return PusherCodeText[code] ?? "error";
}

/** Pusher's error frames, each counted in `tidings_errors_total`. */
export class PusherReplies {
  constructor(private readonly metrics: Pick<Metrics, "errors">) {}

  /** `pusher:error`; the connection stays. */
  error(conn: Connection, code: number | null, message: string): void {
    this.metrics.errors.inc({ dialect: "pusher", code: String(code ?? "protocol") });
    conn.send(encode.error(code, message));
  }

  /** `pusher:subscription_error` on `channel`. */
  subscriptionError(
    conn: Connection,
    channel: string,
    type: string,
    message: string,
    status: number,
  ): void {
    this.metrics.errors.inc({ dialect: "pusher", code: type });
    conn.send(encode.subscriptionError(channel, type, message, status));
  }

  /** Pusher sends the error as a frame, then closes with the same code. */
  close(conn: Connection, code: number, detail?: string): void {
    const text = codeText(code);
    this.metrics.errors.inc({ dialect: "pusher", code: String(code) });
    conn.send(encode.error(code, detail ? `${text}: ${detail}` : text));
    conn.close(code, text);
  }

  /**
   * A failed request: the dialect's own refusal and the core's limits are
   * subscription errors (both limits are `LimitReached`, 4100, as Pusher
   * names them); storage trouble and bugs are connection-level errors.
   */
  failed(conn: Connection, f: Failure<PusherSubscriptionError>): void {
    if (f.kind === "request") {
      const e = f.error;
      this.subscriptionError(conn, e.channel, e.type, e.message, e.status);
    } else if (f.kind === "refused") {
      const message =
        f.reason === "channel_full"
          ? "The maximum members in this presence channel has been reached"
          : f.message;
      this.subscriptionError(conn, f.channel, "LimitReached", message, 4100);
    } else {
      this.error(conn, null, f.message);
    }
  }
}
