/**
 * Spreads the leaders of an app's partition streams over the cluster's
 * nodes. A stream's leader does all of its writes, so partitions that share
 * a leader share that node's ceiling; JetStream places each new stream on
 * its own and often puts several leaders on one node (nats-server 2.15 did
 * so for two of three in our runs).
 *
 * The only lever that works on every server we support is a leader
 * stepdown (`$JS.API.STREAM.LEADER.STEPDOWN.<stream>`). nats-server 2.11+
 * takes a preferred new leader in its body; 2.9 answers such a body with
 * "bad request" and takes only an empty one, after which a random other
 * replica wins the election, so there it takes a few rounds.
 *
 * Best effort: leaders on fewer nodes cost throughput, not correctness. The
 * engine runs this in the background once an app's streams serve, so a
 * lagging follower or an election never holds up a gateway's start, and
 * every way it can wait is bounded (`SpreadLimits`).
 */
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KvStore } from "./engine.js";

/** How long spreading may take, counted in polls so that it ends whatever the clock does. */
export interface SpreadLimits {
  /** Stepdowns tried before giving up: each moves one leader; 2.9 picks the new one at random. */
  maxRounds: number;
  /** Total time spent waiting for an answer, a leader or a replica to catch up, over the whole run. */
  waitBudgetMs: number;
  /** How long one stepdown may take to show a new leader. */
  electionWaitMs: number;
  pollMs: number;
}

export const DEFAULT_SPREAD_LIMITS: SpreadLimits = {
  maxRounds: 16,
  waitBudgetMs: 5000,
  electionWaitMs: 5000,
  pollMs: 100,
};

/** What spreading needs of the cluster: the real one is `natsLeaders`, tests use a fake. */
export interface LeaderOps {
  /** A stream's info, or null when it does not answer (electing a leader, say). */
  info(stream: string): Promise<StreamInfo | null>;
  /** Asks the stream's leader to step down in favour of `to` (a wish: 2.9 picks at random). */
  stepDown(stream: string, to: string): Promise<void>;
  pause(ms: number): Promise<void>;
}

export interface SpreadResult {
  spread: boolean;
  leaders: (string | undefined)[];
  /** Why it stopped short, when `spread` is false. */
  why?: string;
}

type Move = { stream: string; from: string; to: string };

/**
 * Moves leaders until the streams are led by as many distinct nodes as
 * there are streams and nodes, or until no move is possible, the limits are
 * spent or `signal` aborts.
 */
export async function spreadLeaders(
  streams: readonly string[],
  ops: LeaderOps,
  limits: SpreadLimits = DEFAULT_SPREAD_LIMITS,
  signal?: AbortSignal,
): Promise<SpreadResult> {
  let leaders: (string | undefined)[] = [];
  let waited = 0;
  let rounds = 0;
  const stopped = (why: string): SpreadResult => ({ spread: false, leaders, why });
  for (;;) {
    if (signal?.aborted) return stopped("stopped");
    // A stream electing a leader may not answer its info in time.
    const infos = await Promise.all(streams.map((s) => ops.info(s).catch(() => null)));
    leaders = infos.map((i) => i?.cluster?.leader);
    const known = infos.filter((i): i is StreamInfo => i !== null);
    const plan =
      known.length < infos.length || leaders.includes(undefined) ? "wait" : nextMove(known);
    if (plan === "done") return { spread: true, leaders };
    if (plan === "stuck") return stopped("no move possible");
    if (plan === "wait") {
      // An election is under way, or the replica to move to is catching up:
      // worth a short wait, never an unbounded one.
      if (waited >= limits.waitBudgetMs) return stopped(`still waiting after ${waited} ms`);
      await ops.pause(limits.pollMs);
      waited += limits.pollMs;
      continue;
    }
    if (rounds++ >= limits.maxRounds) return stopped(`${limits.maxRounds} stepdowns`);
    if (signal?.aborted) return stopped("stopped");
    await ops.stepDown(plan.stream, plan.to);
    await untilMoved(ops, plan, limits, signal);
  }
}

/**
 * A stream to move and where; "done" when the leaders are on as many nodes
 * as the streams and their peers allow; "wait" when the only ways on are to
 * replicas that are not current yet (a stepdown to one would stall the
 * stream); "stuck" when no node leading several streams has a peer leading
 * none of them.
 */
export function nextMove(infos: StreamInfo[]): Move | "done" | "wait" | "stuck" {
  const led = new Map<string, number>();
  const nodes = new Set<string>();
  for (const i of infos) {
    const leader = i.cluster?.leader;
    if (leader) led.set(leader, (led.get(leader) ?? 0) + 1);
    for (const r of i.cluster?.replicas ?? []) if (!r.offline) nodes.add(r.name);
    if (leader) nodes.add(leader);
  }
  if (led.size >= Math.min(infos.length, nodes.size)) return "done";
  let lagging = false;
  // The last stream of a node leading several: moving it frees that node's
  // share. Any peer leading none of the app's partitions will do.
  for (const i of [...infos].reverse()) {
    const from = i.cluster?.leader;
    if (!from || (led.get(from) ?? 0) < 2) continue;
    const free = (i.cluster?.replicas ?? []).filter((r) => !r.offline && !led.has(r.name));
    const to = free.find((r) => r.current)?.name;
    if (to) return { stream: i.config.name, from, to };
    if (free.length > 0) lagging = true;
  }
  return lagging ? "wait" : "stuck";
}

async function untilMoved(
  ops: LeaderOps,
  move: Move,
  limits: SpreadLimits,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (let waited = 0; waited < limits.electionWaitMs && !signal?.aborted; ) {
    const leader = (await ops.info(move.stream).catch(() => null))?.cluster?.leader;
    if (leader !== undefined && leader !== move.from) return;
    await ops.pause(limits.pollMs);
    waited += limits.pollMs;
  }
}

const BAD_REQUEST = 10003;

/** `LeaderOps` on a NATS cluster. */
export function natsLeaders(
  nc: NatsConnection,
  jsm: JetStreamManager,
  signal?: AbortSignal,
): LeaderOps {
  return {
    info: (stream) => jsm.streams.info(stream).catch(() => null),
    async stepDown(stream, to) {
      const subject = `$JS.API.STREAM.LEADER.STEPDOWN.${stream}`;
      const ask = async (body?: string) => {
        const reply = await nc.request(subject, body, { timeout: 5000 });
        return reply.json<{ error?: { err_code?: number; description?: string } }>();
      };
      let answer = await ask(JSON.stringify({ placement: { preferred: to } }));
      // A server before 2.11 knows no preferred leader and rejects the body.
      if (answer.error?.err_code === BAD_REQUEST) answer = await ask();
      if (answer.error) throw new Error(`stepdown ${stream}: ${answer.error.description}`);
    },
    pause: (ms) =>
      new Promise((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal?.removeEventListener("abort", done);
          resolve(undefined);
        };
        const t = setTimeout(done, ms);
        signal?.addEventListener("abort", done);
      }),
  };
}

/**
 * Several gateways starting at once would each step down the same streams,
 * and every stepdown pauses that partition's writes for an election. So one
 * process spreads an app's leaders at a time: it holds this key of the
 * app's (in the engine's KV, which every gateway already opens) while it
 * does, and the others skip spreading, since the holder is doing it. We
 * chose the lock over re-reading the layout before each stepdown: two
 * processes reading the same layout plan the same move, so a re-read only
 * narrows that window.
 *
 * The key is created (compare-and-set: only one process succeeds) with the
 * time its hold ends; a holder that died leaves a hold others take over,
 * again by compare-and-set on its revision, once that time has passed.
 * Releasing sets the end to 0 under the holder's revision. Clocks of the
 * processes only need to agree to within the TTL, which outlasts
 * `spreadLeaders` at its default limits.
 */
export const LEADER_LOCK_KEY = "_leaders";
export const LEADER_LOCK_TTL_MS = 180_000;

/** Takes the app's spreading lock: its release, or null when another process holds it. */
export async function takeLeaderLock(
  kv: KvStore,
  ttlMs = LEADER_LOCK_TTL_MS,
  now: () => number = Date.now,
): Promise<(() => Promise<void>) | null> {
  const hold = { until: now() + ttlMs };
  let revision = await kv.create(LEADER_LOCK_KEY, hold);
  if (revision === null) {
    const held = await kv.get(LEADER_LOCK_KEY);
    const until = (held?.value as { until?: unknown } | null)?.until;
    if (held && typeof until === "number" && until > now()) return null;
    revision = held
      ? await kv.update(LEADER_LOCK_KEY, hold, held.revision)
      : await kv.create(LEADER_LOCK_KEY, hold);
    if (revision === null) return null;
  }
  const mine = revision;
  return async () => {
    // Under our revision only: a hold someone took over after ours expired stays theirs.
    await kv.update(LEADER_LOCK_KEY, { until: 0 }, mine);
  };
}
