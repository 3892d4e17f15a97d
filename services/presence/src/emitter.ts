import type { Engine } from "../../../shared/src/engine/engine.js";
import type { Logger } from "../../../shared/src/log.js";
import type { WebhookSink } from "../../../shared/src/webhooks/queue.js";
import type { PresenceEffect } from "./core.js";
import { CountThrottle, type Timers } from "./throttle.js";

/** What presence needs from an engine: fan-out of signals, nothing stored. */
export type SignalSink = Pick<Engine, "signal" | "signalUser">;

export interface EmitterOptions {
  /** Minimum gap between two subscriber-count signals of one channel (default 1000). */
  countIntervalMs?: number | undefined;
  timers?: Timers | undefined;
  log?: Logger | undefined;
  /**
   * Pusher webhooks decided here: occupied/vacated and member added/removed
   * are cluster-wide facts, and the process running this state machine is the
   * one place that sees each exactly once.
   */
  webhooks?: WebhookSink | undefined;
}

/** Emits core effects through an engine, throttling subscriber counts. */
export class EffectEmitter {
  private readonly counts: CountThrottle;

  constructor(
    private readonly sink: SignalSink,
    private readonly options: EmitterOptions = {},
  ) {
    this.counts = new CountThrottle(
      (appId, channel, count) =>
        this.send(() => sink.signal(appId, channel, { kind: "subscriber_count", count })),
      options.countIntervalMs ?? 1000,
      options.timers,
    );
  }

  emit(effects: readonly PresenceEffect[]): void {
    const hooks = this.options.webhooks;
    for (const e of effects) {
      if (e.to === "channel") {
        this.send(() => this.sink.signal(e.appId, e.channel, e.signal));
        const s = e.signal;
        if (hooks && s.kind === "member") {
          const name = s.action === "joined" ? "member_added" : "member_removed";
          hooks.enqueue(e.appId, { name, channel: e.channel, user_id: s.userId });
        }
      } else if (e.to === "user")
        this.send(() => this.sink.signalUser(e.appId, e.userId, e.signal));
      else if (e.to === "count") this.counts.update(e.appId, e.channel, e.count);
      else {
        const name = e.occupied ? "channel_occupied" : "channel_vacated";
        hooks?.enqueue(e.appId, { name, channel: e.channel });
      }
    }
  }

  /** Baseline counts a new owner inherits, so they are not re-announced. */
  seedCount(appId: string, channel: string, count: number): void {
    this.counts.seed(appId, channel, count);
  }

  close(): void {
    this.counts.close();
  }

  /**
   * Signals are fire and forget: the memory engine runs subscriber handlers
   * synchronously, and one that throws must not fail the presence operation
   * (state is already updated) or stop the remaining signals.
   */
  private send(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.options.log?.warn({ err }, "presence signal delivery failed");
    }
  }
}
