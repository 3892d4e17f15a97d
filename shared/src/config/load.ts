import { readFileSync } from "node:fs";
import { type AppConfig, intProblem, parseApps } from "./apps.js";
import { type AppLimits, type ConfigKey, type Field, type Settings, schema } from "./schema.js";
import { closest } from "./suggest.js";

/** Everything a process is configured with; its settings' types come from the schema. */
export type Config = Settings & {
  readonly apps: readonly AppConfig[];
  /** True when no apps were configured and the development app is in use. */
  readonly devApp: boolean;
  /** Defaults for every app, overridable per app under `limits`. */
  readonly defaultLimits: AppLimits;
  /** Non-fatal findings (unknown variables, dev app in use). */
  readonly warnings: readonly string[];
};

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
      warnings.push(`unknown variable ${name} ignored${didYouMean(name, known)}`);
  }

  // Parsed values are sorted as they are read: per-app limits into the
  // defaults, `apps` into its own parser, the rest into the settings.
  const settings: Record<string, unknown> = {};
  const defaultLimits: Record<string, number> = {};
  let appsValue: unknown;
  for (const [key, field] of Object.entries(schema) as [ConfigKey, Field][]) {
    const value = parseField(field, raw[field.env], problems);
    if (field.appLimit) defaultLimits[field.appLimit] = value as number;
    else if (key === "apps") appsValue = value;
    else if (key !== "configFile") settings[key] = value;
  }
  // The schema checked each field's type; this is where the record takes it.
  const typed = settings as Settings;
  const limits = defaultLimits as AppLimits;

  // Presence declares a gateway dead after gatewayTimeoutMs without a heartbeat.
  if (typed.heartbeatMs >= typed.gatewayTimeoutMs) {
    problems.push(
      `TIDINGS_HEARTBEAT_MS (${typed.heartbeatMs}) must be less than TIDINGS_GATEWAY_TIMEOUT_MS (${typed.gatewayTimeoutMs}), or live gateways are declared dead`,
    );
  }
  if (typed.consoleSecret !== undefined && typed.consoleSecret.length < 16) {
    problems.push("TIDINGS_CONSOLE_SECRET must be at least 16 characters (it guards every app)");
  }
  if (typed.role !== "all" && typed.natsUrl === undefined) {
    problems.push(
      `TIDINGS_ROLE=${typed.role} needs NATS_URL (separate processes share state through NATS)`,
    );
  }

  let apps: AppConfig[] = [];
  const devApp = appsValue === undefined;
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
    apps = parseApps(appsValue, limits, problems);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({ ...typed, apps, devApp, defaultLimits: limits, warnings });
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
      const why = intProblem(n, field);
      return why ? bad(why) : n;
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
        return bad(`is not valid JSON${jsonErrorAt(err)}`);
      }
    default:
      return text;
  }
}

function readFile(path: string | undefined, problems: string[]): Raw {
  if (!path) return {};
  try {
    const text = readFileSync(path, "utf8");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      problems.push(`TIDINGS_CONFIG_FILE: ${path} is not valid JSON${jsonErrorAt(err)}`);
      return {};
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      problems.push(`TIDINGS_CONFIG_FILE: ${path} must hold a JSON object`);
      return {};
    }
    const out: Raw = {};
    const known = new Set<string>(Object.values(schema).map((f) => f.env));
    for (const [k, v] of Object.entries(parsed)) {
      if (!known.has(k))
        problems.push(`TIDINGS_CONFIG_FILE: unknown key ${k}${didYouMean(k, known)}`);
      else out[k] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return out;
  } catch (err) {
    problems.push(`TIDINGS_CONFIG_FILE: cannot read ${path}: ${(err as Error).message}`);
    return {};
  }
}

/**
 * Where JSON.parse gave up, without its message: Node 20's messages quote the
 * input around the error (`Unexpected token 'x', "…" is not valid JSON`),
 * and the input here holds app secrets.
 */
function jsonErrorAt(err: unknown): string {
  const at = /at position ([0-9]+)/.exec((err as Error).message ?? "");
  return at ? ` (parse error at character ${at[1]})` : "";
}

function didYouMean(name: string, known: Set<string>): string {
  const hint = closest(name, [...known]);
  return hint ? ` (did you mean ${hint}?)` : "";
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
