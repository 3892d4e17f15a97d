import type { Engine } from "../../../../shared/src/engine/engine.js";

/**
 * Users blocked in a channel through the HTTP API, in the `blocks` KV
 * bucket keyed by (user, channel). A dialect loads a user's blocked
 * channels once at connect (after it listens to the user's signals) and
 * then checks in memory; a block or unblock reaches every gateway holding
 * the user's connections as a `blocked` user signal.
 */
export class Blocks {
  constructor(private readonly engine: Engine) {}

  async channelsBlockedFor(appId: string, userId: string): Promise<Set<string>> {
    const keys = await this.engine.kv(appId, "blocks").keys(userPrefix(userId));
    const channels = new Set<string>();
    for (const k of keys) {
      const [user, channel] = JSON.parse(k) as [string, string];
      if (user === userId) channels.add(channel);
    }
    return channels;
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

/** `["user",` — every key of that user and no other (the id is JSON-quoted). */
function userPrefix(userId: string): string {
  return `${JSON.stringify([userId]).slice(0, -1)},`;
}
