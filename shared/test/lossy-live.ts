import { jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription, SubscriptionOptions } from "@nats-io/nats-core";
import type { DeliveryGap } from "../src/engine/engine.js";
import { LiveHub, type LiveOptions } from "../src/engine/js-live.js";
import { StreamReader } from "../src/engine/js-reader.js";
import type { Delivery, StoredEvent } from "../src/model.js";
import { channelStream } from "../src/subjects.js";

/**
 * A connection that drops the messages `drop` picks before its
 * subscriptions see them: the loss core NATS causes on a disconnect or a
 * slow consumer, made deterministic.
 */
export function droppingConnection(
  nc: NatsConnection,
  drop: (subscribed: string, msg: Msg) => boolean,
): NatsConnection {
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === "subscribe") {
        return (subject: string, opts: SubscriptionOptions = {}): Subscription => {
          const callback = opts.callback;
          return target.subscribe(subject, {
            ...opts,
            callback: (err, msg) => {
              if (!err && drop(subject, msg)) return;
              callback?.(err, msg);
            },
          });
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A connection whose live-subject messages can be dropped on demand. */
export function lossyConnection(nc: NatsConnection, drop: (msg: Msg) => boolean): NatsConnection {
  return droppingConnection(nc, (subject, msg) => subject.includes(".live.") && drop(msg));
}

/**
 * The engine's live fan-out for one channel, fed through a lossy connection,
 * so a test can prove the gap filling: returns what it delivered, the gaps
 * it gave up on and the background errors it reported. Gap reads go over
 * `readerNc` (default: `raw`), so a test can take them away.
 */
export async function lossyLiveChannel(
  raw: NatsConnection,
  app: string,
  channel: string,
  drop: (msg: Msg) => boolean,
  { live, readerNc = raw }: { live?: Partial<LiveOptions>; readerNc?: NatsConnection } = {},
): Promise<{
  hub: LiveHub;
  got: Delivery[];
  gaps: DeliveryGap[];
  errors: unknown[];
  close(): void;
}> {
  const reader = new StreamReader(
    readerNc,
    await jetstreamManager(readerNc, { timeout: 1000 }),
    1000,
  );
  const errors: unknown[] = [];
  const hub = new LiveHub(
    lossyConnection(raw, drop),
    reader,
    () => true,
    (e) => errors.push(e),
    live,
  );
  const got: Delivery[] = [];
  const gaps: DeliveryGap[] = [];
  const sub = hub.subscribe(
    channel,
    channelStream(app, channel),
    (d) => got.push(d),
    (gap) => gaps.push(gap),
  );
  await sub.ready;
  return {
    hub,
    got,
    gaps,
    errors,
    close: () => {
      sub.close();
      hub.close();
    },
  };
}

export const eventsOf = (got: Delivery[]): StoredEvent[] =>
  got.flatMap((d) => (d.type === "event" ? [d.event] : []));
