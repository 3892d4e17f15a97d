import { readFileSync } from "node:fs";
import { type AppConfig, type AppLimits, parseApps } from "./apps.js";
import { type ConfigKey, type Field, schema } from "./schema.js";

export interface Config {
  port: number;
  host: string;
  apps: readonly AppConfig[];
  /** True when no apps were configured and the development app is in use. */
  devApp: boolean;
  natsUrl: readonly string[] | undefined;
  natsUser: string | undefined;
  natsPass: string | undefined;
  natsToken: string | undefined;
  natsCredsFile: string | undefined;
  natsTlsCa: string | undefined;
  natsReplicas: number;
  role: "all" | "gateway" | "presence";
  logLevel: string;
  drainSeconds: number;
  activityTimeoutSec: number;
  pongTimeoutSec: number;
  heartbeatMs: number;
  gatewayTimeoutMs: number;
  /** Defaults for every app, overridable per app under `limits`. */
  defaultLimits: AppLimits;
  /** Non-fatal findings (unknown variables, dev app in use). */
  warnings: readonly string[];
}

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

type Raw = Record<string, string | undefined>;

/**
 * Reads env (and the optional JSON file named by TIDINGS_CONFIG_FILE),
 * reports every problem at once, and returns a deep-frozen config.
 */
export function loadConfig(env: Raw = process.env): Config {
  const problems: string[] = [];
  const warnings: string[] = [];
  const raw: Raw = { ...readFile(env.TIDINGS_CONFIG_FILE, problems), ...pickDefined(env) };

  const known = new Set<string>(Object.values(schema).map((f) => f.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith("TIDINGS_") && !known.has(name))
      warnings.push(`unknown variable ${name} ignored`);
  }

  const values = {} as Record<ConfigKey, unknown>;
  for (const [key, field] of Object.entries(schema) as [ConfigKey, Field][]) {
    values[key] = parseField(field, raw[field.env], problems);
  }

  const defaultLimits = {} as Record<string, number>;
  for (const field of Object.values(schema) as Field[]) {
    if (field.appLimit) defaultLimits[field.appLimit] = values[keyOf(field)] as number;
  }
  const limits = defaultLimits as unknown as AppLimits;

  let apps: AppConfig[] = [];
  const devApp = values.apps === undefined;
  if (devApp) {
    apps = [
      {
        id: "app-id",
        key: "app-key",
        secret: "app-secret",
        apiKeys: [],
        allowedOrigins: [],
        webhooks: [],
        limits,
      },
    ];
    warnings.push(
      "TIDINGS_APPS is not set: using the development app app-id/app-key/app-secret (never in production)",
    );
  } else {
    apps = parseApps(values.apps, limits, problems);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    port: values.port as number,
    host: values.host as string,
    apps,
    devApp,
    natsUrl: values.natsUrl as string[] | undefined,
    natsUser: values.natsUser as string | undefined,
    natsPass: values.natsPass as string | undefined,
    natsToken: values.natsToken as string | undefined,
    natsCredsFile: values.natsCredsFile as string | undefined,
    natsTlsCa: values.natsTlsCa as string | undefined,
    natsReplicas: values.natsReplicas as number,
    role: values.role as Config["role"],
    logLevel: values.logLevel as string,
    drainSeconds: values.drainSeconds as number,
    activityTimeoutSec: values.activityTimeoutSec as number,
    pongTimeoutSec: values.pongTimeoutSec as number,
    heartbeatMs: values.heartbeatMs as number,
    gatewayTimeoutMs: values.gatewayTimeoutMs as number,
    defaultLimits: limits,
    warnings,
  });
}

function keyOf(field: Field): ConfigKey {
  return (Object.keys(schema) as ConfigKey[]).find((k) => schema[k].env === field.env)!;
}

function parseField(field: Field, text: string | undefined, problems: string[]): unknown {
  if (text === undefined || text === "") return field.default;
  const bad = (why: string) => {
    problems.push(`${field.env}: ${why} (got ${field.secret ? "<hidden>" : JSON.stringify(text)})`);
    return field.default;
  };
  switch (field.type) {
    case "int": {
      if (!/^-?[0-9]+$/.test(text.trim())) return bad("must be an integer");
      const n = Number(text);
      if (field.min !== undefined && n < field.min) return bad(`must be at least ${field.min}`);
      return n;
    }
    case "bool":
      if (!["true", "false", "1", "0"].includes(text)) return bad("must be true or false");
      return text === "true" || text === "1";
    case "enum":
      if (!field.values?.includes(text)) return bad(`must be one of ${field.values?.join(", ")}`);
      return text;
    case "list":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    case "json":
      try {
        return JSON.parse(text);
      } catch (err) {
        return bad(`is not valid JSON: ${(err as Error).message}`);
      }
    default:
      return text;
  }
}

function readFile(path: string | undefined, problems: string[]): Raw {
  if (!path) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      problems.push(`TIDINGS_CONFIG_FILE: ${path} must hold a JSON object`);
      return {};
    }
    const out: Raw = {};
    const known = new Set<string>(Object.values(schema).map((f) => f.env));
    for (const [k, v] of Object.entries(parsed)) {
      if (!known.has(k)) problems.push(`TIDINGS_CONFIG_FILE: unknown key ${k}`);
      else out[k] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return out;
  } catch (err) {
    problems.push(`TIDINGS_CONFIG_FILE: cannot read ${path}: ${(err as Error).message}`);
    return {};
  }
}

function pickDefined(env: Raw): Raw {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
