import type { Run } from "../../core/define-dialect.js";
import type { DialectContext } from "../../core/dialect.js";
import { decode, encode } from "./codec.js";
import { PusherSubscriptionStatus } from "./codes.js";
import { enableDelta } from "./extensions.js";
import type { PusherReplies } from "./replies.js";
import type { PusherConnection } from "./state.js";
import { PusherChannels } from "./subscriptions.js";
import { PusherUsers } from "./user.js";

/** A Pusher connection's frames: decoded, then handed to what handles them. */
export class PusherCommands {
  private readonly channels: PusherChannels;
  private readonly users: PusherUsers;

  constructor(
    ctx: Pick<DialectContext, "webhooks">,
    private readonly replies: PusherReplies,
  ) {
    this.channels = new PusherChannels(ctx, replies);
    this.users = new PusherUsers(replies);
  }

  handle(s: PusherConnection, text: string, run: Run<undefined>): void {
    const { conn } = s.session;
    const decoded = decode(text);
    if (!decoded.ok) {
      const { channel, message } = decoded;
      // A connection-level error for a bad name would leave pusher-js waiting on the channel.
      if (channel === undefined) this.replies.error(conn, null, message);
      else {
        const status = PusherSubscriptionStatus.invalidChannelName;
        this.replies.subscriptionError(conn, channel, "InvalidChannelName", message, status);
      }
      return;
    }
    const c = decoded.command;
    switch (c.type) {
      case "ping":
        conn.send(encode.pong());
        break;
      case "pong":
        break;
      case "subscribe":
        run(undefined, () => this.channels.subscribe(s, c));
        break;
      case "unsubscribe":
        this.channels.unsubscribe(s, c.channel);
        break;
      case "client_event":
        this.channels.clientEvent(s, c);
        break;
      case "signin":
        run(undefined, () => this.users.signin(s, c.auth, c.userData));
        break;
      case "enable_delta":
        enableDelta(this.replies, s, c.algorithms);
        break;
      case "delta_sync_error":
        s.deltas?.drop(c.channel);
        break;
    }
  }
}
