/**
 * Integration helpers: presence replicas (in process or as a child process
 * that can be SIGKILLed), gateways (one NATS connection + client each) and
 * a recorder of every signal the service emits, read off raw NATS.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { JetStreamEngine } from "../../../shared/src/engine/jetstream.js";
import { createLogger } from "../../../shared/src/log.js";
import type { PresenceVersion, Signal } from "../../../shared/src/model.js";
import { compareVersions } from "../../../shared/src/presence/api.js";
import { decodeToken } from "../../../shared/src/subjects.js";
import { NatsPresenceClient } from "../src/client.js";
import {
  type PresenceService,
  type PresenceServiceOptions,
  startPresenceService,
} from "../src/service.js";

export const HEARTBEAT_MS = 100;
export const GATEWAY_TIMEOUT_MS = 1500;
export const LEASE_TTL_MS = 750;

export interface Recorded {
  app: string;
  /** Channel for channel signals, undefined for user signals. */
  channel?: string | undefined;
  user?: string | undefined;
  signal: Signal;
  at: number;
}

export interface Recorder extends AsyncDisposable {
  readonly all: Recorded[];
  members(channel: string): { action: string; userId: string; connectionId?: string | undefined }[];
  toUser(user: string): Signal[];
  close(): Promise<void>;
}

/** Subscribes to every channel and user signal subject and keeps what arrives, in order. */
export async function recordSignals(url: string): Promise<Recorder> {
  const nc = await connect({ servers: url });
  const all: Recorded[] = [];
  const newest = new Map<string, PresenceVersion>();
  const take = (user: boolean) => (_err: Error | null, msg: Msg) => {
    // Channel signals share the live subject with RePublished events (subjects.ts).
    if (msg.headers?.has("Nats-Sequence")) return;
    const [, app = "", , token = ""] = msg.subject.split(".");
    const signal = JSON.parse(new TextDecoder().decode(msg.data)) as Signal;
    const name = decodeToken(token);
    // As a gateway does: a versioned signal no newer than the channel's last is a
    // repeat (a new owner resending its predecessor's last batch), not news.
    const version = signal.version;
    if (version) {
      const last = newest.get(msg.subject);
      if (last && compareVersions(version, last) <= 0) return;
      newest.set(msg.subject, version);
    }
    all.push({
      app: decodeToken(app),
      ...(user ? { user: name } : { channel: name }),
      signal,
      at: Date.now(),
    });
  };
  nc.subscribe("tdg.*.live.*", { callback: take(false) });
  nc.subscribe("tdg.*.user.*", { callback: take(true) });
  await nc.flush();
  const close = () => nc.close();
  return {
    all,
    members: (channel) =>
      all.flatMap((r) =>
        r.channel === channel && r.signal.kind === "member"
          ? [
              {
                action: r.signal.action,
                userId: r.signal.userId,
                connectionId: r.signal.excludeConnectionId,
              },
            ]
          : [],
      ),
    toUser: (user) => all.filter((r) => r.user === user).map((r) => r.signal),
    close,
    [Symbol.asyncDispose]: close,
  };
}

export interface Replica extends AsyncDisposable {
  service: PresenceService;
  stop(): Promise<void>;
}

/** A presence replica in this process, emitting through a real JetStream engine. */
export async function startReplica(
  url: string,
  options: Pick<PresenceServiceOptions, "occupancyWebhooks"> = {},
): Promise<Replica> {
  const nc = await connect({ servers: url });
  const engine = await JetStreamEngine.connect({ servers: url });
  const service = await startPresenceService({
    nc,
    engine,
    log: createLogger("silent", "presence-test"),
    heartbeatMs: HEARTBEAT_MS,
    gatewayTimeoutMs: GATEWAY_TIMEOUT_MS,
    leaseTtlMs: LEASE_TTL_MS,
    ...options,
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await service.close();
    await engine.close();
    await nc.close();
  };
  return { service, stop, [Symbol.asyncDispose]: stop };
}

export interface ChildReplica extends AsyncDisposable {
  /** Partitions the child reported acquiring and not releasing. */
  owned: Set<number>;
  kill(): Promise<void>;
}

/** `npm run start:presence` as a real child process (tsx), so a test can SIGKILL it. */
export async function spawnReplica(url: string): Promise<ChildReplica> {
  const proc: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", "services/presence/src/main.ts"],
    {
      env: {
        ...process.env,
        NATS_URL: url,
        LOG_LEVEL: "info",
        TIDINGS_HEARTBEAT_MS: String(HEARTBEAT_MS),
        TIDINGS_GATEWAY_TIMEOUT_MS: String(GATEWAY_TIMEOUT_MS),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const owned = new Set<number>();
  let buffer = "";
  let stderr = "";
  proc.stderr?.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  proc.stdout?.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      const entry = parseLog(line);
      if (entry?.partition === undefined) continue;
      if (entry.msg === "presence partition acquired") owned.add(entry.partition);
      if (entry.msg === "presence partition released") owned.delete(entry.partition);
    }
  });
  const kill = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill("SIGKILL");
    await exited;
  };
  proc.once("exit", (code) => {
    if (code !== null && code !== 0)
      process.stderr.write(`presence child exited ${code}:\n${stderr}\n`);
  });
  return { owned, kill, [Symbol.asyncDispose]: kill };
}

function parseLog(line: string): { msg?: string; partition?: number } | null {
  try {
    return JSON.parse(line) as { msg?: string; partition?: number };
  } catch {
    // Not a pino line (tsx or node warnings): nothing to track.
    return null;
  }
}

export interface Gateway extends AsyncDisposable {
  client: NatsPresenceClient;
  nc: NatsConnection;
  /** Dies without a word: no more heartbeats, no leaves reported. */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

export async function startGateway(
  url: string,
  gatewayId?: string,
  /** What the client's connection is (default: the connection itself), e.g. one that drops messages. */
  wrap: (nc: NatsConnection) => NatsConnection = (nc) => nc,
): Promise<Gateway> {
  const nc = await connect({ servers: url });
  const client = new NatsPresenceClient({
    nc: wrap(nc),
    heartbeatMs: HEARTBEAT_MS,
    gatewayId,
    retryForMs: 15_000,
  });
  let done = false;
  const stop = async () => {
    if (done) return;
    done = true;
    await client.close();
    await nc.close();
  };
  const crash = async () => {
    done = true;
    await nc.close();
    await client.close();
  };
  return { client, nc, crash, stop, [Symbol.asyncDispose]: stop };
}
