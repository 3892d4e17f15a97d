import type { ClusterBus, NatsState } from "../../../../shared/src/cluster/bus.js";
import type { StreamState } from "../../../../shared/src/engine/js-streams.js";
import type { GatewayContext } from "../core/dialect.js";
import { appsInScope, inScope, type Scope } from "./auth.js";
import type { ClusterView, ProcessView } from "./cluster-view.js";

export interface AppTotals {
  appId: string;
  connections: number;
  /** Occupied channels and their subscriptions, cluster-wide (presence). */
  channels: number;
  subscriptions: number;
  /** Frames in from and out to the app's clients and events published, per second, summed over gateways. */
  msgsInPerSec: number;
  msgsOutPerSec: number;
  eventsPerSec: number;
}

export interface ClusterSnapshot {
  at: number;
  engine: "jetstream" | "memory";
  processes: ProcessView[];
  nats: NatsState | null;
  streams: StreamState[] | null;
  apps: AppTotals[];
}

/** What is slow to read (NATS round trips) is read at most this often, whoever asks. */
const REFRESH_MS = 2000;

interface SlowState {
  at: number;
  nats: NatsState | null;
  streams: StreamState[] | null;
  channels: Map<string, { channels: number; subscriptions: number }>;
}

/**
 * The cluster view a console shows: process stats as heard on the bus, and
 * NATS, stream and per-app state read every couple of seconds (cached, so
 * any number of open consoles cost one read).
 */
export class Snapshots {
  private cache: SlowState | undefined;
  private refreshing: Promise<SlowState> | undefined;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly bus: ClusterBus,
    private readonly view: ClusterView,
  ) {}

  async get(scope: Scope): Promise<ClusterSnapshot> {
    const c =
      this.cache && Date.now() - this.cache.at <= REFRESH_MS ? this.cache : await this.refresh();
    const processes = this.view.processes(scope);
    const apps = appsInScope(scope, this.ctx.apps).map((appId): AppTotals => {
      let connections = 0;
      let msgsInPerSec = 0;
      let msgsOutPerSec = 0;
      let eventsPerSec = 0;
      for (const p of this.view.processes({ kind: "app", appId })) {
        if (p.kind !== "gateway" || p.state === "silent") continue;
        connections += p.connections ?? 0;
        msgsInPerSec += p.msgsInPerSec ?? 0;
        msgsOutPerSec += p.msgsOutPerSec ?? 0;
        eventsPerSec += p.eventsPerSec ?? 0;
      }
      const ch = c.channels.get(appId);
      return {
        appId,
        connections,
        channels: ch?.channels ?? 0,
        subscriptions: ch?.subscriptions ?? 0,
        msgsInPerSec,
        msgsOutPerSec,
        eventsPerSec,
      };
    });
    return {
      at: Date.now(),
      engine: c.nats ? "jetstream" : "memory",
      processes,
      nats: c.nats,
      streams: c.streams?.filter((s) => inScope(scope, s.appId)) ?? null,
      apps,
    };
  }

  private refresh(): Promise<SlowState> {
    this.refreshing ??= (async () => {
      const appIds = this.ctx.apps.all().map((a) => a.id);
      const [nats, streams, channels] = await Promise.all([
        this.bus.nats().catch(() => null),
        this.bus.streams(appIds).catch(() => null),
        Promise.all(
          appIds.map(async (id) => {
            try {
              const list = await this.ctx.presence.channels(id);
              return [
                id,
                {
                  channels: list.length,
                  subscriptions: list.reduce((n, c) => n + c.subscriptionCount, 0),
                },
              ] as const;
            } catch {
              return [id, { channels: 0, subscriptions: 0 }] as const;
            }
          }),
        ),
      ]);
      this.cache = { at: Date.now(), nats, streams, channels: new Map(channels) };
      return this.cache;
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }
}
