/** Apps (tenants): credentials and per-app limits. */

import { MAX_STREAM_PARTITIONS } from "../subjects.js";
import {
  isWebhookEventType,
  WEBHOOK_EVENT_TYPES,
  type WebhookEventType,
} from "../webhooks/events.js";
import { type Jwk, parseJwks } from "./jwks.js";
import { type AppLimits, type Field, schema } from "./schema.js";
import { unknownField } from "./suggest.js";

/** A Pusher webhook receiver; without `eventTypes` it gets every event type. */
export interface WebhookConfig {
  url: string;
  eventTypes?: readonly WebhookEventType[] | undefined;
}

/** Whether the receiver gets events of this type. */
export function takesEvent(hook: WebhookConfig, name: WebhookEventType): boolean {
  return !hook.eventTypes || hook.eventTypes.includes(name);
}

export interface AppConfig {
  id: string;
  key: string;
  secret: string;
  /** Extra secrets accepted for server-side APIs (Broadcaster REST, Foony key auth). */
  apiKeys: readonly string[];
  /** JWKS (`{keys:[...]}`) for RS256/ES256 JWTs; HS256 with `secret` always works. */
  jwks?: { keys: readonly Jwk[] } | undefined;
  /** If non-empty, WebSocket upgrades must carry one of these `Origin`s. */
  allowedOrigins: readonly string[];
  /** Pusher webhook receivers (`webhooks: [{url, event_types?}]` in TIDINGS_APPS). */
  webhooks: readonly WebhookConfig[];
  limits: AppLimits;
  /**
   * JetStream streams the app's channels are spread over (README, Stream
   * partitions). 1 (also when absent) is the one stream `TIDINGS_<app>` of
   * every earlier version.
   */
  streamPartitions?: number | undefined;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Every field an app object may carry; anything else is a typo or a stale key. */
const APP_FIELDS = [
  "id",
  "key",
  "secret",
  "apiKeys",
  "jwks",
  "allowedOrigins",
  "webhooks",
  "limits",
  "streamPartitions",
] as const;
const WEBHOOK_FIELDS = ["url", "event_types"] as const;

/** The schema field behind each per-app limit, for its bounds. */
const LIMIT_FIELDS = new Map(
  (Object.values(schema) as Field[]).flatMap((f) => (f.appLimit ? [[f.appLimit, f] as const] : [])),
);

export function parseApps(input: unknown, defaults: AppLimits, problems: string[]): AppConfig[] {
  const where = "TIDINGS_APPS";
  if (!Array.isArray(input) || input.length === 0) {
    problems.push(`${where}: must be a non-empty JSON array of apps`);
    return [];
  }
  const apps: AppConfig[] = [];
  const seen = { id: new Set<string>(), key: new Set<string>() };
  input.forEach((item: unknown, i) => {
    const at = `${where}[${i}]`;
    if (typeof item !== "object" || item === null) {
      problems.push(`${at}: must be an object`);
      return;
    }
    if (Array.isArray(item)) {
      problems.push(`${at}: must be an object, not an array`);
      return;
    }
    const a = item as Record<string, unknown>;
    for (const k of Object.keys(a)) {
      if (!(APP_FIELDS as readonly string[]).includes(k))
        problems.push(unknownField(at, k, APP_FIELDS));
    }
    for (const f of ["id", "key", "secret"] as const) {
      if (typeof a[f] !== "string" || a[f] === "")
        problems.push(`${at}.${f}: must be a non-empty string`);
    }
    if (typeof a.id === "string" && !ID.test(a.id))
      problems.push(`${at}.id: use 1-64 of A-Z a-z 0-9 _ -`);
    if (typeof a.key === "string" && !ID.test(a.key))
      problems.push(`${at}.key: use 1-64 of A-Z a-z 0-9 _ -`);
    for (const f of ["id", "key"] as const) {
      const v = a[f];
      if (typeof v === "string") {
        if (seen[f].has(v)) problems.push(`${at}.${f}: duplicate ${f} ${v}`);
        seen[f].add(v);
      }
    }
    const strings = (f: string): string[] => {
      const v = a[f];
      if (v === undefined) return [];
      // An empty API key would match an empty secret; an empty origin matches nothing useful.
      if (Array.isArray(v) && v.every((s) => typeof s === "string" && s !== ""))
        return v as string[];
      problems.push(`${at}.${f}: must be an array of non-empty strings`);
      return [];
    };
    const limits = { ...defaults };
    if (a.limits !== undefined) {
      if (typeof a.limits !== "object" || a.limits === null || Array.isArray(a.limits))
        problems.push(`${at}.limits: must be an object`);
      else {
        for (const [k, v] of Object.entries(a.limits)) {
          const field = LIMIT_FIELDS.get(k);
          if (!field) problems.push(unknownField(`${at}.limits`, k, [...LIMIT_FIELDS.keys()]));
          else {
            const why = intProblem(v, field);
            if (why) problems.push(`${at}.limits.${k}: ${why}`);
            else limits[k as keyof AppLimits] = v as number;
          }
        }
      }
    }
    let streamPartitions = 1;
    if (a.streamPartitions !== undefined) {
      const why = intProblem(a.streamPartitions, { min: 1, max: MAX_STREAM_PARTITIONS });
      if (why) problems.push(`${at}.streamPartitions: ${why}`);
      else streamPartitions = a.streamPartitions as number;
    }
    const jwks = a.jwks === undefined ? undefined : parseJwks(a.jwks, `${at}.jwks`, problems);
    apps.push({
      id: String(a.id),
      key: String(a.key),
      secret: String(a.secret),
      apiKeys: strings("apiKeys"),
      allowedOrigins: strings("allowedOrigins"),
      webhooks: parseWebhooks(a.webhooks, `${at}.webhooks`, problems),
      jwks,
      limits,
      streamPartitions,
    });
  });
  return apps;
}

function parseWebhooks(input: unknown, at: string, problems: string[]): WebhookConfig[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) {
    problems.push(`${at}: must be an array of {url, event_types?}`);
    return [];
  }
  const hooks: WebhookConfig[] = [];
  input.forEach((item: unknown, i) => {
    const w = item as { url?: unknown; event_types?: unknown } | null;
    if (typeof w !== "object" || w === null || Array.isArray(w)) {
      problems.push(`${at}[${i}]: must be an object`);
      return;
    }
    for (const k of Object.keys(w)) {
      if (!(WEBHOOK_FIELDS as readonly string[]).includes(k))
        problems.push(unknownField(`${at}[${i}]`, k, WEBHOOK_FIELDS));
    }
    let url: URL | undefined;
    try {
      url = typeof w.url === "string" ? new URL(w.url) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:"))
      problems.push(`${at}[${i}].url: must be an http:// or https:// URL`);
    let eventTypes: WebhookEventType[] | undefined;
    if (w.event_types !== undefined) {
      const types = w.event_types;
      if (!Array.isArray(types) || types.length === 0 || !types.every(isWebhookEventType))
        problems.push(
          `${at}[${i}].event_types: must be a non-empty array of ${WEBHOOK_EVENT_TYPES.join(", ")}`,
        );
      else eventTypes = types;
    }
    if (url) hooks.push({ url: url.href, eventTypes });
  });
  return hooks;
}

/** Why `v` is not an acceptable value of an int field, or undefined when it is. */
export function intProblem(v: unknown, field: Pick<Field, "min" | "max">): string | undefined {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) return "must be an integer";
  if (field.min !== undefined && v < field.min) return `must be at least ${field.min}`;
  if (field.max !== undefined && v > field.max) return `must be at most ${field.max}`;
  return undefined;
}
