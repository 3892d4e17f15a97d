/**
 * Wire format of stored events and signals for the JetStream engine, plus the
 * mapping of client errors to engine errors. No I/O here.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/nats-core";
import {
  type EventInput,
  eventIdOf,
  eventInput,
  type Json,
  type Signal,
  type StoredEvent,
} from "../model.js";
import { EngineUnavailableError } from "./engine.js";

/** What the stream stores as the message body: the event as published, and when. */
type EventBody = EventInput & { time: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeEventBody(event: EventInput, time: number): Uint8Array {
  // Every field, then time: the key order stored bodies have always had.
  const body: EventBody = Object.assign(eventInput(event, event.via), { time });
  return encoder.encode(JSON.stringify(body));
}

/**
 * The Nats-Msg-Id in a raw NATS header block (`NATS/1.0\r\nName: value\r\n...`),
 * as STREAM.MSG.GET returns it. Header names are case-insensitive.
 */
export function msgIdOfHeaders(block: Uint8Array): string | undefined {
  for (const line of decoder.decode(block).split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === "nats-msg-id") {
      return line.slice(colon + 1).trim() || undefined;
    }
  }
  return undefined;
}

/** Thrown when a stored message is not one of ours (written by something else). */
export class MalformedEventError extends Error {
  override name = "MalformedEventError";
}

export function decodeEvent(channel: string, seq: number, data: Uint8Array): StoredEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new MalformedEventError(`event ${seq} on ${channel} is not JSON`, { cause });
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new MalformedEventError(`event ${seq} on ${channel} is not an object`);
  }
  const b = parsed as Partial<Record<keyof EventBody, unknown>>;
  if (typeof b.name !== "string" || typeof b.time !== "number" || !("data" in b)) {
    throw new MalformedEventError(`event ${seq} on ${channel} lacks name/data/time`);
  }
  const event: StoredEvent = {
    channel,
    seq,
    id: eventIdOf(seq),
    time: b.time,
    name: b.name,
    data: b.data as Json,
  };
  // Optional fields are left absent (not undefined) so events compare equal
  // to the memory engine's.
  if (b.meta !== undefined) event.meta = b.meta as { [key: string]: Json };
  if (typeof b.userId === "string") event.userId = b.userId;
  if (isStringRecord(b.tags)) event.tags = b.tags;
  if (typeof b.excludeConnectionId === "string") {
    event.excludeConnectionId = b.excludeConnectionId;
  }
  if (typeof b.via === "string") event.via = b.via;
  return event;
}

function isStringRecord(v: unknown): v is { [key: string]: string } {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === "string")
  );
}

export function encodeJson(value: Json | Signal): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson(data: Uint8Array): unknown {
  return JSON.parse(decoder.decode(data));
}

/**
 * Signals come from other Tidings processes, but the subject is open to any
 * client of the NATS account; anything without a string `kind` is dropped.
 */
export function decodeSignal(data: Uint8Array): Signal | null {
  try {
    const v = decodeJson(data);
    if (typeof v === "object" && v !== null && typeof (v as { kind?: unknown }).kind === "string") {
      return v as Signal;
    }
  } catch {
    // Not JSON: not a signal of ours.
  }
  return null;
}

/** Errors that mean "NATS or the stream is not reachable right now". */
export function isUnavailable(err: unknown): boolean {
  return (
    err instanceof TimeoutError ||
    err instanceof NoRespondersError ||
    err instanceof ClosedConnectionError ||
    err instanceof DrainingConnectionError ||
    err instanceof ConnectionError ||
    // The client's 503 mapping for JetStream requests; the class is not public API.
    (err instanceof Error && err.name === "JetStreamNotEnabled") ||
    (err instanceof RequestError && (err.isNoResponders() || err.cause instanceof TimeoutError)) ||
    // 503 from the JS API: no leader (election) or JetStream temporarily unavailable.
    (err instanceof JetStreamApiError && err.status === 503)
  );
}

/** Wraps client errors at the engine boundary; unavailability becomes EngineUnavailableError. */
export function wrapError(what: string, err: unknown): Error {
  if (err instanceof EngineUnavailableError) return err;
  if (isUnavailable(err))
    return new EngineUnavailableError(`${what}: NATS unavailable`, { cause: err });
  return new JetStreamEngineError(`${what} failed`, { cause: err });
}

/** A JetStream operation failed for a reason other than unavailability. */
export class JetStreamEngineError extends Error {
  override name = "JetStreamEngineError";
}
