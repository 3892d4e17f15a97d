import {
  type ConnectionInfo,
  type LiveChannel,
  PROBE_ROW_LIMIT,
  type ProbeAnswer,
  type ProbeQuery,
} from "../../../../shared/src/cluster/messages.js";
import type { Connection } from "../core/connection.js";

/**
 * Answers a console's question about this gateway's connections. Reads the
 * connections as they are (no engine, no presence): what is live here now.
 */
export function answerProbe(
  gatewayId: string,
  connections: Iterable<Connection>,
  q: ProbeQuery,
): ProbeAnswer {
  switch (q.type) {
    case "channels": {
      const found = new Map<string, LiveChannel>();
      for (const c of connections) {
        if (!c.app || (q.appId !== undefined && c.app.id !== q.appId)) continue;
        for (const channel of c.channels) {
          if (!channel.startsWith(q.prefix)) continue;
          const key = `${c.app.id}\u0000${channel}`;
          let row = found.get(key);
          if (!row) {
            row = { appId: c.app.id, channel, byDialect: {} };
            found.set(key, row);
          }
          row.byDialect[c.dialect] = (row.byDialect[c.dialect] ?? 0) + 1;
        }
      }
      const channels = [...found.values()].sort((a, b) => a.channel.localeCompare(b.channel));
      return {
        type: "channels",
        gatewayId,
        channels: channels.slice(0, PROBE_ROW_LIMIT),
        truncated: channels.length > PROBE_ROW_LIMIT,
      };
    }
    case "channel": {
      const byDialect: Record<string, number> = {};
      const rows: ConnectionInfo[] = [];
      let total = 0;
      for (const c of connections) {
        if (c.app?.id !== q.appId || !c.hasChannel(q.channel)) continue;
        byDialect[c.dialect] = (byDialect[c.dialect] ?? 0) + 1;
        if (++total <= PROBE_ROW_LIMIT) rows.push(info(gatewayId, q.appId, c));
      }
      return {
        type: "channel",
        gatewayId,
        byDialect,
        connections: rows,
        truncated: total > PROBE_ROW_LIMIT,
      };
    }
    case "user": {
      const rows: ConnectionInfo[] = [];
      let total = 0;
      for (const c of connections) {
        if (!c.app || c.userId !== q.userId) continue;
        if (q.appId !== undefined && c.app.id !== q.appId) continue;
        if (++total <= PROBE_ROW_LIMIT) rows.push(info(gatewayId, c.app.id, c));
      }
      return { type: "user", gatewayId, connections: rows, truncated: total > PROBE_ROW_LIMIT };
    }
  }
}

/** `appId`: the app the caller found `c` bound to (a probe lists bound connections only). */
function info(gatewayId: string, appId: string, c: Connection): ConnectionInfo {
  return {
    gatewayId,
    appId,
    connectionId: c.id,
    dialect: c.dialect,
    userId: c.userId,
    remoteAddress: c.upgrade.remoteAddress,
    channels: [...c.channels].slice(0, 50),
    lastSeenAt: c.lastSeenAt,
  };
}
