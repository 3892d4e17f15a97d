import type { Engine } from "../../../../shared/src/engine/engine.js";

/**
 * Users blocked in a channel through the HTTP API, in the `blocks` KV
 * bucket keyed by (user, channel). A dialect looks a (user, channel) up on
 * its first use and then keeps the answer; a block or unblock reaches every
 * gateway holding the user's connections as a `blocked` user signal.
 */
export class Blocks {
  constructor(private readonly engine: Engine) {}

  async isBlocked(appId: string, channel: string, userId: string): Promise<boolean> {
    return (await this.engine.kv(appId, "blocks").get(kvKey(userId, channel))) !== null;
  }

  async set(appId: string, channel: string, userId: string, blocked: boolean): Promise<void> {
    const kv = this.engine.kv(appId, "blocks");
    if (blocked) await kv.put(kvKey(userId, channel), true);
    else await kv.delete(kvKey(userId, channel));
    this.engine.signalUser(appId, userId, { kind: "blocked", channel, blocked });
  }
}

function kvKey(userId: string, channel: string): string {
  return JSON.stringify([userId, channel]);
}
