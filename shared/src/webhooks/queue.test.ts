import { describe, expect, it } from "vitest";
import { at } from "../../test/defined.js";
import { waitFor } from "../../test/wait.js";
import type { AppConfig, WebhookConfig } from "../config/apps.js";
import { loadConfig } from "../config/load.js";
import { createLogger } from "../log.js";
import { type WebhookBatch, WebhookQueue } from "./queue.js";

const log = createLogger("silent", "test");

function app(webhooks: WebhookConfig[], webhookQueueLimit = 10_000): AppConfig {
  const base = at(loadConfig({}).apps, 0, "the development app");
  return { ...base, webhooks, limits: { ...base.limits, webhookQueueLimit } };
}

function queue(a: AppConfig, deliver: (b: WebhookBatch) => Promise<void>, maxBatch = 100) {
  const counts = { dropped: 0, delivered: 0, failed: 0 };
  const q = new WebhookQueue({
    apps: (id) => (id === a.id ? a : undefined),
    deliver,
    log,
    windowMs: 20,
    maxBatch,
    retryBaseMs: 10,
  });
  q.useCounters({
    dropped: (_, n) => {
      counts.dropped += n;
    },
    delivered: (_, n) => {
      counts.delivered += n;
    },
    failed: () => {
      counts.failed++;
    },
  });
  return { q, counts };
}

const names = (b: WebhookBatch) =>
  (JSON.parse(b.body) as { events: { channel: string }[] }).events.map((e) => e.channel);

describe("WebhookQueue", () => {
  // One POST per window, not per event: receivers get Pusher-sized batches.
  it("batches per url within the window and splits at maxBatch", async () => {
    const a = app([{ url: "http://a/" }]);
    const got: WebhookBatch[] = [];
    const { q } = queue(a, async (b) => void got.push(b), 3);
    for (const c of ["1", "2", "3", "4"]) q.enqueue(a.id, { name: "channel_occupied", channel: c });
    await waitFor(() => got.length === 2);
    expect(got.map(names)).toEqual([["1", "2", "3"], ["4"]]);
    expect(JSON.parse(at(got, 0).body).time_ms).toBeTypeOf("number");
    await q.close();
  });

  // A receiver only gets the types it asked for.
  it("filters by event_types per receiver", async () => {
    const a = app([{ url: "http://a/", eventTypes: ["cache_miss"] }, { url: "http://b/" }]);
    const got: WebhookBatch[] = [];
    const { q } = queue(a, async (b) => void got.push(b));
    q.enqueue(a.id, { name: "channel_occupied", channel: "x" });
    q.enqueue(a.id, { name: "cache_miss", channel: "y" });
    await waitFor(() => got.length === 2);
    const byUrl = Object.fromEntries(got.map((b) => [b.url, names(b)]));
    expect(byUrl).toEqual({ "http://a/": ["y"], "http://b/": ["x", "y"] });
    await q.close();
  });

  // Delivery is retried with the same batch id (JetStream dedupes a re-publish by it).
  it("retries a failed batch until it is delivered", async () => {
    const a = app([{ url: "http://a/" }]);
    const ids: string[] = [];
    const { q, counts } = queue(a, async (b) => {
      ids.push(b.id);
      if (ids.length < 3) throw new Error("down");
    });
    q.enqueue(a.id, { name: "channel_vacated", channel: "x" });
    await waitFor(() => counts.delivered === 1);
    expect(counts.failed).toBe(2);
    expect(new Set(ids).size).toBe(1);
    expect(q.size(a.id)).toBe(0);
    await q.close();
  });

  // Bounded memory: a dead receiver costs at most the limit (plus one batch in flight).
  it("drops the oldest events past the app limit, counting them", async () => {
    const a = app([{ url: "http://a/" }], 5);
    let release: () => void = () => {};
    const got: WebhookBatch[] = [];
    const { q, counts } = queue(a, (b) => {
      got.push(b);
      return got.length === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve();
    });
    q.enqueue(a.id, { name: "cache_miss", channel: "0" });
    await waitFor(() => got.length === 1);
    for (let i = 1; i <= 10; i++) q.enqueue(a.id, { name: "cache_miss", channel: String(i) });
    expect(counts.dropped).toBe(6);
    expect(q.size(a.id)).toBe(5);
    release();
    await waitFor(() => q.size(a.id) === 0);
    expect(got.slice(1).flatMap(names)).toEqual(["7", "8", "9", "10"]);
    await q.close();
  });
});
