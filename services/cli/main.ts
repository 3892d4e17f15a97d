/**
 * The `tidings` command: start a role, mint a dev token, print the config.
 * `npm start`, the per-role mains and the image all come through here, so
 * `--help` answers everywhere instead of starting a server.
 */
import { parseArgs } from "node:util";
import type { AppConfig } from "../../shared/src/config/apps.js";
import { type Config, ConfigError, loadConfig } from "../../shared/src/config/load.js";
import { tidingsVersion as version } from "../../shared/src/version.js";
import { CONFIG_HELP, MAIN_HELP, START_HELP, TOKEN_HELP } from "./help.js";
import { maskedConfig } from "./masked-config.js";
import { DIALECTS, mintToken, parseDuration, type TokenDialect } from "./token.js";
import { UsageError } from "./usage.js";

const ROLES = ["all", "gateway", "presence"] as const;
type Role = (typeof ROLES)[number];

const HELP: Record<string, string> = {
  start: START_HELP,
  token: TOKEN_HELP,
  config: CONFIG_HELP,
};

/** Runs the command line; resolves once a non-server command has printed its output. */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    await dispatch([...argv]);
  } catch (err) {
    if (err instanceof UsageError) exit(2, `tidings: ${err.message}\nSee: tidings --help\n`);
    if (err instanceof ConfigError) exit(2, `${err.message}\n`);
    throw err;
  }
}

async function dispatch(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith("-")) {
    if (first === "-h" || first === "--help") return print(MAIN_HELP);
    if (first === "-v" || first === "--version") return print(`${version()}\n`);
    if (first !== undefined) throw new UsageError(`unknown option ${first}`);
    return start(undefined);
  }
  if (rest.includes("-h") || rest.includes("--help")) return print(helpFor(first));
  switch (first) {
    case "help":
      return print(rest[0] === undefined ? MAIN_HELP : helpFor(rest[0]));
    case "start":
      return start(parseRole(rest));
    case "token":
      return token(rest);
    case "config":
      return config(rest);
    default:
      throw new UsageError(`unknown command ${first}`);
  }
}

function helpFor(command: string): string {
  const text = HELP[command];
  if (!text) throw new UsageError(`unknown command ${command}`);
  return text;
}

function parseRole(args: string[]): Role | undefined {
  if (args.length > 1) throw new UsageError(`start takes one role, got ${args.join(" ")}`);
  const role = args[0];
  if (role === undefined) return undefined;
  if (!(ROLES as readonly string[]).includes(role))
    throw new UsageError(`unknown role ${role}; one of ${ROLES.join(", ")}`);
  return role as Role;
}

async function start(role: Role | undefined): Promise<void> {
  // Loaded only here: token and config must not need uWS or NATS to answer.
  const { fatal, run } = await import("../runtime.js");
  await run(role).catch(fatal);
}

async function token(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    app: { type: "string" },
    user: { type: "string" },
    channels: { type: "string" },
    expires: { type: "string" },
    jwt: { type: "boolean" },
    watchlist: { type: "string" },
    scope: { type: "string" },
    contacts: { type: "string" },
    ops: { type: "string" },
    claims: { type: "string" },
    "socket-id": { type: "string" },
    channel: { type: "string" },
    "user-info": { type: "string" },
    signin: { type: "boolean" },
  });
  const dialect = positionals[0];
  if (positionals.length !== 1 || !(DIALECTS as readonly string[]).includes(dialect ?? ""))
    throw new UsageError(`token needs one dialect: ${DIALECTS.join(", ")}`);
  const app = pickApp(loadQuiet(), values.app as string | undefined);
  const text = await mintToken(
    dialect as TokenDialect,
    app,
    {
      user: values.user as string | undefined,
      channels: list(values.channels),
      expiresSec: parseDuration((values.expires as string | undefined) ?? "1h"),
      jwt: values.jwt === true,
      watchlist: list(values.watchlist),
      scope: values.scope === undefined ? ["subscribe", "publish"] : list(values.scope),
      contacts: list(values.contacts),
      ops:
        values.ops === undefined
          ? ["subscribe", "publish", "presence", "history"]
          : list(values.ops),
      claims: jsonObject(values.claims, "--claims"),
      socketId: values["socket-id"] as string | undefined,
      channel: values.channel as string | undefined,
      userInfo:
        values["user-info"] === undefined ? undefined : json(values["user-info"], "--user-info"),
      signin: values.signin === true,
    },
    Math.floor(Date.now() / 1000),
  );
  print(`${text}\n`);
}

async function config(args: string[]): Promise<void> {
  parse(args, {});
  const loaded = loadConfig(process.env);
  for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
  // Unset settings print as null, so the output shows every setting there is.
  print(`${JSON.stringify(maskedConfig(loaded), (_k, v: unknown) => v ?? null, 2)}\n`);
}

/** The config for minting: its warnings (the dev app in use) are not news to a developer. */
function loadQuiet(): Config {
  return loadConfig(process.env);
}

function pickApp(config: Config, wanted: string | undefined): AppConfig {
  if (wanted === undefined) {
    const [only, ...others] = config.apps;
    if (only && others.length === 0) return only;
    throw new UsageError(`there are ${config.apps.length} apps: name one with --app ID`);
  }
  const app = config.apps.find((a) => a.id === wanted || a.key === wanted);
  if (!app) throw new UsageError(`--app: no app with id or key ${wanted}`);
  return app;
}

type Options = NonNullable<Parameters<typeof parseArgs>[0]>["options"];

function parse(
  args: string[],
  options: Options,
): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs explains the flag it could not take ("Unknown option '--x'").
    throw new UsageError((err as Error).message);
  }
}

function list(v: unknown): string[] {
  return typeof v === "string"
    ? v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

function json(text: unknown, flag: string): unknown {
  try {
    return JSON.parse(String(text));
  } catch {
    throw new UsageError(`${flag} must be JSON`);
  }
}

function jsonObject(text: unknown, flag: string): Record<string, unknown> {
  if (text === undefined) return {};
  const v = json(text, flag);
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new UsageError(`${flag} must be a JSON object`);
  return v as Record<string, unknown>;
}

function print(text: string): void {
  process.stdout.write(text);
}

function exit(code: number, text: string): never {
  process.stderr.write(text);
  process.exit(code);
}
