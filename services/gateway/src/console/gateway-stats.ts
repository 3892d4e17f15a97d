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
  let last: Sample | undefined;
  return async () => {
    const apps: GatewayFigures["apps"] = {};
    const app = (appId: string) => {
      const a = apps[appId] ?? { connections: 0, channels: 0 };
      apps[appId] = a;
      return a;
    };
    for (const v of (await metrics.connections.get()).values) {
      const appId = v.labels.app;
      if (typeof appId !== "string" || v.value <= 0) continue;
      app(appId).connections += v.value;
    }
    for (const [appId, channels] of hub.appChannelCounts()) {
      const a = apps[appId];
      if (a) a.channels = channels;
    }
    const now: Sample = {
      at: Date.now(),
      in: await byApp(metrics.messagesIn),
      out: await byApp(metrics.messagesOut),
      published: await byApp(metrics.published),
    };
    const secs = last ? Math.max(0.001, (now.at - last.at) / 1000) : 1;
    const rate = (a: number, b: number | undefined) =>
      last ? Math.max(0, Math.round((a - (b ?? 0)) / secs)) : 0;
    // Per app, rates for the apps with connections here or traffic since the last sample.
    for (const appId of new Set([
      ...Object.keys(apps),
      ...now.in.keys(),
      ...now.out.keys(),
      ...now.published.keys(),
    ])) {
      const moved = (m: keyof Omit<Sample, "at">) =>
        (now[m].get(appId) ?? 0) !== (last?.[m].get(appId) ?? 0);
      if (appId === "" || !(appId in apps || moved("in") || moved("out") || moved("published")))
        continue;
      const a = app(appId);
      a.msgsInPerSec = rate(now.in.get(appId) ?? 0, last?.in.get(appId));
      a.msgsOutPerSec = rate(now.out.get(appId) ?? 0, last?.out.get(appId));
      a.eventsPerSec = rate(now.published.get(appId) ?? 0, last?.published.get(appId));
    }
    const figures: GatewayFigures = {
      connections: connectionCount(),
      channels: hub.channelTotal(),
      msgsInPerSec: rate(sum(now.in), last ? sum(last.in) : 0),
      msgsOutPerSec: rate(sum(now.out), last ? sum(last.out) : 0),
      apps,
    };
    last = now;
    return figures;
  };
}

/** The gateway's counters at one sample. */
interface Sample {
  at: number;
  in: Map<string, number>;
  out: Map<string, number>;
  published: Map<string, number>;
}

type Counted = Metrics["messagesIn"] | Metrics["messagesOut"] | Metrics["published"];

/** A counter's total per app label (unlabelled frames, before an app is known, under ""). */
async function byApp(counter: Counted): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const v of (await counter.get()).values) {
    const appId = typeof v.labels.app === "string" ? v.labels.app : "";
    out.set(appId, (out.get(appId) ?? 0) + v.value);
  }
  return out;
}

function sum(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}
