import type { GatewayFigures } from "../../../../shared/src/cluster/messages.js";
import type { Connection } from "../core/connection.js";
import type { Metrics } from "../metrics.js";

/**
 * The gateway's figures for its stats message: counts read off the
 * connections, message rates as the change of the gateway's own counters
 * since the previous sample.
 */
export function gatewayFigures(
  metrics: Metrics,
  connections: () => Iterable<Connection>,
): () => Promise<GatewayFigures> {
  let last: { at: number; in: number; out: number } | undefined;
  return async () => {
    const apps: GatewayFigures["apps"] = {};
    const channels = new Set<string>();
    const perApp = new Map<string, Set<string>>();
    let count = 0;
    for (const c of connections()) {
      count++;
      if (!c.app) continue;
      const a = apps[c.app.id] ?? { connections: 0, channels: 0 };
      apps[c.app.id] = a;
      a.connections++;
      let set = perApp.get(c.app.id);
      if (!set) {
        set = new Set();
        perApp.set(c.app.id, set);
      }
      for (const ch of c.channels) {
        set.add(ch);
        channels.add(`${c.app.id}\u0000${ch}`);
      }
      a.channels = set.size;
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
      connections: count,
      channels: channels.size,
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
