import type { PresenceEntry } from "../../../../../shared/src/presence/api.js";
import { PRESENCE_UNAVAILABLE } from "../../core/session-error.js";
import { allows, type Operation } from "./auth.js";
import { type ClientFrame, encode } from "./codec.js";
import { FoonyError, FoonyRequestError } from "./codes.js";
import { foonyEncoder } from "./encoder.js";
import type { FoonySession } from "./state.js";

/** What an authenticated connection may send (a second `auth` is refused before this). */
export type Request = Exclude<ClientFrame, { t: "auth" }>;

/** Handlers for authenticated Foony requests. Errors are thrown as FoonyRequestError. */
export async function handle(s: FoonySession, f: Request): Promise<void> {
  const { session } = s;
  const { conn } = session;
  switch (f.t) {
    case "ping":
      conn.send(encode.pong());
      return;
    case "sub":
      authorize(s, f.channel, "subscribe");
      return subscribe(s, f);
    case "unsub":
      if (!session.subscribed(f.channel))
        throw new FoonyRequestError(FoonyError.notFound, `not subscribed to ${f.channel}`);
      session.leave(f.channel);
      conn.send(encode.ack(f.id));
      return;
    case "pub":
      authorize(s, f.channel, "publish");
      await session.publish(f.channel, { name: f.name, data: f.data, userId: s.clientId });
      conn.send(encode.ack(f.id));
      return;
    case "pres":
      authorize(s, f.channel, "presence");
      await presence(s, f);
      conn.send(encode.ack(f.id));
      return;
    case "hist": {
      authorize(s, f.channel, "history");
      const page = await session.history(f.channel, { beforeSeq: f.beforeSeq, limit: f.limit });
      conn.send(encode.histRes(f.id, f.channel, page.events, page.hasMore));
      return;
    }
  }
}

function authorize(s: FoonySession, channel: string, op: Operation): void {
  if (!allows(s.capability, channel, op))
    throw new FoonyRequestError(FoonyError.forbidden, `no ${op} capability for ${channel}`);
}

async function subscribe(s: FoonySession, f: Request & { t: "sub" }): Promise<void> {
  const { session } = s;
  const { conn } = session;
  // A second sub restarts the subscription so its lastMessageId replay takes effect.
  if (session.subscribed(f.channel)) session.leave(f.channel);
  let acked = false;
  const ack = () => {
    if (acked) return;
    acked = true;
    conn.send(encode.ack(f.id));
  };
  let entries: PresenceEntry[] = [];
  // The plan is ready at once, so the channel counts as subscribed before the
  // first await: an `unsub` sent right after this `sub` finds it and cancels the join.
  await session.join(f.channel, {
    encoder: foonyEncoder,
    afterSeq: f.afterSeq,
    // Counted for subscriber counts and channel listings; Foony's members are its
    // entries, so presence trouble leaves the subscription without them.
    // Its members are its own entries (the snapshot): presence's answer is not read.
    presence: { member: false, optional: true, answer: false },
    // The hub drops the held changes the set already has (by version), so none repeats.
    snapshot: async () => {
      try {
        const set = await session.presenceEntries(f.channel);
        entries = set.entries;
        return set.version;
      } catch (err) {
        conn.log.warn({ err }, "presence set unavailable; sending live changes only");
        return undefined;
      }
    },
    // The set as one `enter` per entry (the spec has no "present" action or
    // presence query), before any change held meanwhile.
    beforeEvents: () => {
      ack();
      const now = Date.now();
      for (const e of entries)
        conn.send(encode.presEvt(f.channel, { kind: "entry", action: "enter", ...e }, now));
    },
  });
  // An unsub that overtook the join cancels it before beforeEvents; still answer.
  ack();
}

async function presence(s: FoonySession, f: Request & { t: "pres" }): Promise<void> {
  const { session } = s;
  let action = f.action;
  let data = f.data;
  if (action === "leave") {
    if (!s.entered.has(f.channel))
      throw new FoonyRequestError(FoonyError.notFound, `not present in ${f.channel}`);
    // A leave without data reports the data the member had.
    data ??= s.entered.get(f.channel);
    s.entered.delete(f.channel);
  } else {
    // An update from a client nobody has seen enter is its entrance.
    if (!s.entered.has(f.channel)) action = "enter";
    s.entered.set(f.channel, data);
  }
  // The service announces the change (or nothing, for an update that changes
  // nothing) and announces the leave itself if this connection or gateway dies.
  await session
    .setPresence({ channel: f.channel, clientId: s.clientId, action, data })
    .catch((err: unknown) => {
      session.conn.log.warn({ err }, "presence report failed");
      throw new FoonyRequestError(FoonyError.server, PRESENCE_UNAVAILABLE);
    });
}
