import type { GatewayFigures } from "../../../../shared/src/cluster/messages.js";
import type { Hub } from "../core/hub.js";
import type { Metrics } from "../metrics.js";

/**
 * The gateway's figures for its stats message, from running counts: open
 * connections (the server's set), connections per app (the connections
 * gauge, moved at bind and close), channels per app (the hub's); message
 * rates as the change of the gateway's own counters since the previous
 * sample. Nothing walks the connections or their channels: at thousands of
 * channels that walk, once a second, was a few percent of a core.
 */
export function gatewayFigures(
  metrics: Metrics,
  hub: Pick<Hub, "channelTotal" | "appChannelCounts">,
  connectionCount: () => number,
): () => Promise<GatewayFigures> {
  let last: { at: number; in: number; out: number } | undefined;
  return async () => {
    const apps: GatewayFigures["apps"] = {};
    for (const v of (await metrics.connections.get()).values) {
      const appId = v.labels.app;
      if (typeof appId !== "string" || v.value <= 0) continue;
      const a = apps[appId] ?? { connections: 0, channels: 0 };
      apps[appId] = a;
      a.connections += v.value;
    }
    for (const [appId, channels] of hub.appChannelCounts()) {
      const a = apps[appId];
      if (a) a.channels = channels;
    }
    const now = Date.now();
    const totals = {
      at: now,
      in: await total(metrics.messagesIn),
      out: await total(metrics.messagesOut),
    };
    const secs = last ? Math.max(0.001, (now - last.at) / 1000) : 1;
    const rate = (a: number, b: number) => (last ? Math.max(0, Math.round((a - b) / secs)) : 0);
    const figures: GatewayFigures = {
      connections: connectionCount(),
      channels: hub.channelTotal(),
      msgsInPerSec: rate(totals.in, last?.in ?? 0),
      msgsOutPerSec: rate(totals.out, last?.out ?? 0),
      apps,
    };
    last = totals;
    return figures;
  };
}

async function total(counter: Metrics["messagesIn"]): Promise<number> {
  const m = await counter.get();
  return m.values.reduce((n, v) => n + v.value, 0);
}
