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
 */
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";

/** Stepdowns tried before giving up: each moves one leader; 2.9 picks the new one at random. */
const MAX_ROUNDS = 16;
/** How long one stepdown may take to show a new leader. */
const ELECTION_WAIT_MS = 10_000;
const POLL_MS = 100;
const BAD_REQUEST = 10003;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nodes that lead the streams: as many distinct ones as partitions and nodes allow. */
export async function spreadLeaders(
  nc: NatsConnection,
  jsm: JetStreamManager,
  streams: readonly string[],
): Promise<{ spread: boolean; leaders: (string | undefined)[] }> {
  let leaders: (string | undefined)[] = [];
  const deadline = Date.now() + MAX_ROUNDS * ELECTION_WAIT_MS;
  for (let round = 0; round <= MAX_ROUNDS && Date.now() < deadline; ) {
    // A stream electing a leader may not answer its info in time: wait for it.
    const infos = await Promise.all(streams.map((s) => jsm.streams.info(s).catch(() => null)));
    leaders = infos.map((i) => i?.cluster?.leader);
    const known = infos.filter((i): i is StreamInfo => i !== null);
    const plan =
      known.length < infos.length || leaders.includes(undefined) ? "wait" : nextMove(known);
    if (plan === "done") return { spread: true, leaders };
    if (plan === "wait") {
      // An election is under way, or the replica to move to is catching up.
      await pause(POLL_MS);
      continue;
    }
    if (round++ === MAX_ROUNDS) break;
    await stepDown(nc, plan.stream, plan.to);
    await untilLedBy(jsm, plan.stream, (l) => l !== undefined && l !== plan.from);
  }
  return { spread: false, leaders };
}

/**
 * A stream to move and where; "done" when the leaders are spread as far as
 * the streams' peers allow; "wait" when the only way on is to a replica
 * that is not current yet (a stepdown to it would stall the stream).
 */
function nextMove(
  infos: StreamInfo[],
): { stream: string; from: string; to: string } | "done" | "wait" {
  const led = new Map<string, number>();
  const nodes = new Set<string>();
  for (const i of infos) {
    const leader = i.cluster?.leader;
    if (leader) led.set(leader, (led.get(leader) ?? 0) + 1);
    for (const r of i.cluster?.replicas ?? []) if (!r.offline) nodes.add(r.name);
    if (leader) nodes.add(leader);
  }
  if (led.size >= Math.min(infos.length, nodes.size)) return "done";
  // The last stream of a node leading several: moving it frees that node's share.
  for (const i of [...infos].reverse()) {
    const from = i.cluster?.leader;
    if (!from || (led.get(from) ?? 0) < 2) continue;
    const candidates = (i.cluster?.replicas ?? [])
      .filter((r) => r.current && !r.offline && !led.has(r.name))
      .map((r) => r.name);
    const to = candidates[0];
    if (to) return { stream: i.config.name, from, to };
  }
  return "wait";
}

async function stepDown(nc: NatsConnection, stream: string, to: string): Promise<void> {
  const subject = `$JS.API.STREAM.LEADER.STEPDOWN.${stream}`;
  const ask = async (body?: string) => {
    const reply = await nc.request(subject, body, { timeout: 5000 });
    return reply.json<{ error?: { err_code?: number; description?: string } }>();
  };
  let answer = await ask(JSON.stringify({ placement: { preferred: to } }));
  // A server before 2.11 knows no preferred leader and rejects the body.
  if (answer.error?.err_code === BAD_REQUEST) answer = await ask();
  if (answer.error) throw new Error(`stepdown ${stream}: ${answer.error.description}`);
}

async function untilLedBy(
  jsm: JetStreamManager,
  stream: string,
  ok: (leader: string | undefined) => boolean,
): Promise<void> {
  const deadline = Date.now() + ELECTION_WAIT_MS;
  while (Date.now() < deadline) {
    const info = await jsm.streams.info(stream).catch(() => null);
    if (ok(info?.cluster?.leader)) return;
    await pause(POLL_MS);
  }
}
