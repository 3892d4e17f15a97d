/**
 * Gateway ↔ presence service messages: one discriminated union on `type`,
 * JSON on the wire. Everything a gateway reports about its connections is a
 * `PresenceReport`, sent in order inside a `batch` to the partition owner;
 * queries go to the same subject so they are answered after earlier reports.
 */
import type { Json, PresenceVersion, UserStatus } from "../model.js";
import type {
  ChannelInfo,
  ChannelSubscription,
  Member,
  PresenceEntry,
  SubscribeOutcome,
} from "./api.js";

/** One subscription of a connection, as a gateway knows it. */
export interface SubscriptionSnapshot {
  channel: string;
  userId?: string | undefined;
  info?: Json | undefined;
  member: boolean;
}

/** One presence entry of a connection (Foony `pres`), as a gateway knows it. */
export interface PresenceEntrySnapshot {
  channel: string;
  clientId: string;
  data?: Json | undefined;
}

/** A new record's watchlist and subscriptions: one empty array for all records. */
export const NO_ITEMS: readonly never[] = Object.freeze([]);

/** Everything a gateway knows about one of its connections. */
export interface ConnectionSnapshot {
  appId: string;
  connectionId: string;
  /** Set once `connectionOpened` was reported: the connection counts as online. */
  userId?: string | undefined;
  opened: boolean;
  /** Replaced, never changed in place: records of connections without any share one empty array. */
  watchlist: readonly string[];
  subs: readonly SubscriptionSnapshot[];
  /** Presence entries; absent means none (gateways and KV records older than entries). */
  present?: readonly PresenceEntrySnapshot[] | undefined;
}

export type PresenceReport =
  | ({ type: "join" } & ChannelSubscription)
  | { type: "leave"; appId: string; channel: string; connectionId: string }
  | { type: "open"; appId: string; connectionId: string; userId: string; watchlist: string[] }
  | { type: "close"; appId: string; connectionId: string }
  | {
      type: "presence";
      appId: string;
      channel: string;
      connectionId: string;
      clientId: string;
      action: "enter" | "update" | "leave";
      data?: Json | undefined;
    }
  | { type: "status"; appId: string; userId: string; status: UserStatus }
  /**
   * The gateway's full state for one partition, in parts numbered from 0
   * (`done` on the last). Replaces whatever the owner had for that gateway in
   * the partition. An owner that missed a part (it took over mid-sync)
   * discards the sync and asks the gateway for a new one.
   */
  | {
      type: "sync";
      syncId: string;
      part: number;
      connections: ConnectionSnapshot[];
      done: boolean;
    };

export type PresenceQuery =
  | { type: "members"; appId: string; channel: string }
  | { type: "count"; appId: string; channel: string }
  | { type: "present"; appId: string; channel: string }
  | { type: "channels"; appId: string; prefix?: string | undefined }
  | { type: "user_status"; appId: string; userId: string };

export type PresenceMessage =
  | PresenceReport
  | PresenceQuery
  /** Reports of one gateway, applied in order; the reply has one result per report. */
  | { type: "batch"; gatewayId: string; reports: PresenceReport[] }
  /** Published by every gateway every `heartbeatMs`; silence for `gatewayTimeoutMs` = dead. */
  | { type: "heartbeat"; gatewayId: string }
  /** From a new partition owner: gateways answer with `sync` reports (one gateway if named). */
  | { type: "resync"; partitions: number[]; gatewayId?: string | undefined };

/** Result of one report: joins get the outcome, everything else `{ok:true}`. */
export type ReportResult = SubscribeOutcome | { ok: true };

export type PresenceReply =
  | { type: "batch_result"; results: ReportResult[] }
  | { type: "members"; members: Member[] }
  | { type: "count"; count: number }
  | { type: "present"; entries: PresenceEntry[]; version?: PresenceVersion | undefined }
  | { type: "channels"; channels: ChannelInfo[] }
  | { type: "user_status"; status: UserStatus }
  /** `not_owner`: the replica lost the partition; retry (another owner will answer). */
  | { type: "error"; code: "invalid" | "not_owner" | "unavailable"; message: string };

export class InvalidPresenceMessageError extends Error {
  override name = "InvalidPresenceMessageError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeMessage(message: PresenceMessage | PresenceReply): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

/** Decodes and validates a message; throws `InvalidPresenceMessageError`. */
export function decodeMessage(data: Uint8Array): PresenceMessage {
  const v = parseJson(data);
  const type = str(v, "type");
  switch (type) {
    case "batch": {
      const reports = v.reports;
      if (!Array.isArray(reports)) throw invalid("batch.reports must be an array");
      return { type, gatewayId: str(v, "gatewayId"), reports: reports.map(checkReport) };
    }
    case "heartbeat":
      return { type, gatewayId: str(v, "gatewayId") };
    case "resync": {
      const parts = v.partitions;
      if (!Array.isArray(parts) || !parts.every((p) => Number.isInteger(p))) {
        throw invalid("resync.partitions must be integers");
      }
      return { type, partitions: parts as number[], gatewayId: optStr(v, "gatewayId") };
    }
    case "members":
    case "count":
    case "present":
      return { type, appId: str(v, "appId"), channel: str(v, "channel") };
    case "channels":
      return { type, appId: str(v, "appId"), prefix: optStr(v, "prefix") };
    case "user_status":
      return { type, appId: str(v, "appId"), userId: str(v, "userId") };
    default:
      return checkReport(v);
  }
}

/** Replies come from our own service; a shape check keeps a bad one from crashing a gateway. */
export function decodeReply(data: Uint8Array): PresenceReply {
  const v = parseJson(data);
  const type = str(v, "type");
  const known = ["batch_result", "members", "count", "present", "channels", "user_status", "error"];
  if (!known.includes(type)) throw invalid(`unknown reply type ${type}`);
  return v as unknown as PresenceReply;
}

type Obj = { [key: string]: unknown };

function checkReport(raw: unknown): PresenceReport {
  const v = obj(raw);
  const type = str(v, "type");
  switch (type) {
    case "join":
      return {
        type,
        appId: str(v, "appId"),
        channel: str(v, "channel"),
        connectionId: str(v, "connectionId"),
        userId: optStr(v, "userId"),
        info: v.info as Json | undefined,
        member: bool(v, "member"),
        maxMembers: int(v, "maxMembers"),
      };
    case "leave":
      return {
        type,
        appId: str(v, "appId"),
        channel: str(v, "channel"),
        connectionId: str(v, "connectionId"),
      };
    case "open":
      return {
        type,
        appId: str(v, "appId"),
        connectionId: str(v, "connectionId"),
        userId: str(v, "userId"),
        watchlist: strings(v, "watchlist"),
      };
    case "close":
      return { type, appId: str(v, "appId"), connectionId: str(v, "connectionId") };
    case "presence":
      return {
        type,
        appId: str(v, "appId"),
        channel: str(v, "channel"),
        connectionId: str(v, "connectionId"),
        clientId: str(v, "clientId"),
        action: presenceAction(v),
        data: v.data as Json | undefined,
      };
    case "status":
      return { type, appId: str(v, "appId"), userId: str(v, "userId"), status: status(v) };
    case "sync": {
      const conns = v.connections;
      if (!Array.isArray(conns)) throw invalid("sync.connections must be an array");
      return {
        type,
        syncId: str(v, "syncId"),
        part: int(v, "part"),
        connections: conns.map(checkSnapshot),
        done: bool(v, "done"),
      };
    }
    default:
      throw invalid(`unknown message type ${type}`);
  }
}

function checkSnapshot(raw: unknown): ConnectionSnapshot {
  const v = obj(raw);
  const subs = v.subs;
  if (!Array.isArray(subs)) throw invalid("snapshot.subs must be an array");
  const present = v.present;
  if (present !== undefined && !Array.isArray(present))
    throw invalid("snapshot.present must be an array");
  return {
    appId: str(v, "appId"),
    connectionId: str(v, "connectionId"),
    userId: optStr(v, "userId"),
    opened: bool(v, "opened"),
    watchlist: strings(v, "watchlist"),
    subs: subs.map((s) => {
      const o = obj(s);
      return {
        channel: str(o, "channel"),
        userId: optStr(o, "userId"),
        info: o.info as Json | undefined,
        member: bool(o, "member"),
      };
    }),
    present: present?.map((e) => {
      const o = obj(e);
      return {
        channel: str(o, "channel"),
        clientId: str(o, "clientId"),
        data: o.data as Json | undefined,
      };
    }),
  };
}

const STATUSES: readonly string[] = ["online", "away", "dnd", "offline"];
const PRESENCE_ACTIONS: readonly string[] = ["enter", "update", "leave"];

function presenceAction(v: Obj): "enter" | "update" | "leave" {
  const a = str(v, "action");
  if (!PRESENCE_ACTIONS.includes(a)) throw invalid(`bad presence action ${a}`);
  return a as "enter" | "update" | "leave";
}

function status(v: Obj): UserStatus {
  const s = str(v, "status");
  if (!STATUSES.includes(s)) throw invalid(`bad status ${s}`);
  return s as UserStatus;
}

function parseJson(data: Uint8Array): Obj {
  try {
    return obj(JSON.parse(decoder.decode(data)));
  } catch (cause) {
    if (cause instanceof InvalidPresenceMessageError) throw cause;
    throw new InvalidPresenceMessageError("not JSON", { cause });
  }
}

function obj(v: unknown): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid("expected an object");
  return v as Obj;
}

function str(v: Obj, key: string): string {
  const s = v[key];
  if (typeof s !== "string") throw invalid(`${key} must be a string`);
  return s;
}

function optStr(v: Obj, key: string): string | undefined {
  return v[key] === undefined || v[key] === null ? undefined : str(v, key);
}

function bool(v: Obj, key: string): boolean {
  const b = v[key];
  if (typeof b !== "boolean") throw invalid(`${key} must be a boolean`);
  return b;
}

function int(v: Obj, key: string): number {
  const n = v[key];
  if (typeof n !== "number" || !Number.isInteger(n)) throw invalid(`${key} must be an integer`);
  return n;
}

function strings(v: Obj, key: string): string[] {
  const a = v[key];
  if (!Array.isArray(a) || !a.every((s) => typeof s === "string")) {
    throw invalid(`${key} must be an array of strings`);
  }
  return a as string[];
}

function invalid(message: string): InvalidPresenceMessageError {
  return new InvalidPresenceMessageError(message);
}
