import { isValidChannel } from "../../../../shared/src/channels.js";
import type { ClusterBus } from "../../../../shared/src/cluster/bus.js";
import type { ConnectionInfo, ProbeAnswer } from "../../../../shared/src/cluster/messages.js";
import type { AppConfig } from "../../../../shared/src/config/apps.js";
import type { StoredEvent } from "../../../../shared/src/model.js";
import type { GatewayContext } from "../core/dialect.js";
import { appsInScope, inScope, type Session } from "./auth.js";
import { ConsoleHttpError } from "./http.js";

/**
 * How long a question to every gateway may take. The gateways the console
 * has heard from are awaited, so only a dead one costs this much; a live one
 * under load may take a few hundred ms to answer, and a shorter bound shows
 * a partial cluster as if it were the whole (`gateways` says how many answered).
 */
const GATHER_TIMEOUT_MS = 1500;
/** The channel-rate chart: this many buckets of this many seconds, newest last. */
export const RATE_BUCKETS = 30;
export const RATE_BUCKET_SEC = 10;

export interface ChannelRow {
  appId: string;
  channel: string;
  subscribers: number;
  byDialect: Record<string, number>;
  gateways: string[];
}

/**
 * The channel inspector and connection lookup: what the gateways report
 * (scatter-gather), what presence knows, what history holds.
 */
export class Inspector {
  constructor(
    private readonly ctx: GatewayContext,
    private readonly bus: ClusterBus,
    private readonly expectGateways: () => number,
  ) {}

  private gather(q: Parameters<ClusterBus["gather"]>[0]): Promise<ProbeAnswer[]> {
    const expect = this.expectGateways();
    return this.bus.gather(q, {
      timeoutMs: GATHER_TIMEOUT_MS,
      expect: expect > 0 ? expect : undefined,
    });
  }

  async channels(s: Session, appId: string | undefined, prefix: string) {
    if (appId !== undefined) this.check(s, appId);
    const scoped = appId ?? (s.scope.kind === "app" ? s.scope.appId : undefined);
    const answers = await this.gather({ type: "channels", appId: scoped, prefix });
    const rows = new Map<string, ChannelRow>();
    let truncated = false;
    for (const a of answers) {
      if (a.type !== "channels") continue;
      truncated ||= a.truncated;
      for (const c of a.channels) {
        if (!inScope(s.scope, c.appId)) continue;
        const key = `${c.appId}\u0000${c.channel}`;
        let row = rows.get(key);
        if (!row) {
          row = { appId: c.appId, channel: c.channel, subscribers: 0, byDialect: {}, gateways: [] };
          rows.set(key, row);
        }
        row.gateways.push(a.gatewayId);
        for (const [d, n] of Object.entries(c.byDialect)) {
          row.byDialect[d] = (row.byDialect[d] ?? 0) + n;
          row.subscribers += n;
        }
      }
    }
    const channels = [...rows.values()].sort(
      (a, b) => b.subscribers - a.subscribers || a.channel.localeCompare(b.channel),
    );
    return {
      channels: channels.slice(0, 500),
      truncated: truncated || channels.length > 500,
      gateways: answers.length,
    };
  }

  async channel(s: Session, appId: string, channel: string, limit: number) {
    const app = this.check(s, appId);
    if (!isValidChannel(channel)) throw new ConsoleHttpError(400, "invalid channel name");
    const [answers, members, present, subscriberCount, recent, rateSource] = await Promise.all([
      this.gather({ type: "channel", appId, channel }),
      this.ctx.presence.members(appId, channel),
      this.ctx.presence.present(appId, channel),
      this.ctx.presence.subscriberCount(appId, channel),
      this.ctx.engine.history(appId, channel, { limit }),
      this.ctx.engine.history(appId, channel, {
        limit: Math.min(1000, app.limits.historyPerChannel),
      }),
    ]);
    const byDialect: Record<string, number> = {};
    const byGateway: Record<string, number> = {};
    const connections: ConnectionInfo[] = [];
    let truncated = false;
    for (const a of answers) {
      if (a.type !== "channel") continue;
      truncated ||= a.truncated;
      let n = 0;
      for (const [d, k] of Object.entries(a.byDialect)) {
        byDialect[d] = (byDialect[d] ?? 0) + k;
        n += k;
      }
      if (n > 0) byGateway[a.gatewayId] = n;
      connections.push(...a.connections);
    }
    return {
      appId,
      channel,
      subscribers: Object.values(byDialect).reduce((x, y) => x + y, 0),
      subscriberCount,
      byDialect,
      byGateway,
      connections,
      truncated,
      /** How many gateways answered. */
      gateways: answers.length,
      members,
      present,
      events: recent.events.map(eventView),
      hasMore: recent.hasMore,
      rate: rateOf(rateSource.events, Date.now()),
    };
  }

  async history(s: Session, appId: string, channel: string, afterSeq: number, limit: number) {
    this.check(s, appId);
    if (!isValidChannel(channel)) throw new ConsoleHttpError(400, "invalid channel name");
    const page = await this.ctx.engine.history(appId, channel, { afterSeq, limit });
    return { events: page.events.map(eventView), hasMore: page.hasMore, truncated: page.truncated };
  }

  async user(s: Session, appId: string | undefined, userId: string) {
    if (appId !== undefined) this.check(s, appId);
    const scoped = appId ?? (s.scope.kind === "app" ? s.scope.appId : undefined);
    const answers = await this.gather({ type: "user", appId: scoped, userId });
    const connections: ConnectionInfo[] = [];
    for (const a of answers) {
      if (a.type === "user")
        connections.push(...a.connections.filter((c) => inScope(s.scope, c.appId)));
    }
    const apps = scoped ? [scoped] : appsInScope(s.scope, this.ctx.apps);
    const status: Record<string, string> = {};
    await Promise.all(
      apps.map(async (id) => {
        status[id] = await this.ctx.presence.status(id, userId);
      }),
    );
    return { userId, connections, status, gateways: answers.length };
  }

  /** The app `appId` names, if the session may see it; else the HTTP error to answer. */
  private check(s: Session, appId: string): AppConfig {
    const app = this.ctx.apps.byId(appId);
    if (!app) throw new ConsoleHttpError(404, `unknown app ${appId}`);
    if (!inScope(s.scope, appId))
      throw new ConsoleHttpError(403, "app outside this session's scope");
    return app;
  }
}

export function eventView(e: StoredEvent) {
  return {
    seq: e.seq,
    id: e.id,
    time: e.time,
    name: e.name,
    data: e.data,
    userId: e.userId,
    via: e.via,
    meta: e.meta,
  };
}

/** Events per bucket over the last RATE_BUCKETS × RATE_BUCKET_SEC seconds, oldest first. */
export function rateOf(events: readonly StoredEvent[], now: number): number[] {
  const buckets = new Array<number>(RATE_BUCKETS).fill(0);
  const span = RATE_BUCKET_SEC * 1000;
  for (const e of events) {
    const age = Math.floor((now - e.time) / span);
    if (age < 0 || age >= RATE_BUCKETS) continue;
    const i = RATE_BUCKETS - 1 - age;
    buckets[i] = (buckets[i] ?? 0) + 1;
  }
  return buckets;
}
