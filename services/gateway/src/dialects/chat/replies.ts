import type { Connection } from "../../core/connection.js";
import type { Metrics } from "../../metrics.js";
import { encode } from "./codec.js";
import { ChatClose, type ChatCode } from "./codes.js";

/** Error answers and auth closes, each counted in the error metric. */
export class ChatReplies {
  constructor(private readonly metrics: Pick<Metrics, "errors">) {}

  /** An error frame; `id` is the request's, null for a frame that was not one. */
  error(conn: Connection, id: string | null, code: ChatCode, message: string): void {
    this.metrics.errors.inc({ dialect: "chat", code });
    conn.send(encode.error(id, Date.now(), code, message));
  }

  /** Missing, bad or revoked token: the client needs a fresh one. */
  authFailed(conn: Connection, message: string): void {
    this.metrics.errors.inc({ dialect: "chat", code: "auth_failed" });
    conn.close(ChatClose.authFailed, message);
  }

  expired(conn: Connection): void {
    this.authFailed(conn, "token expired");
  }
}
