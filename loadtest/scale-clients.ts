/**
 * One client process of the scale run (loadtest/scale.ts forks several):
 * its own fd budget and its own loopback source address, so N connections
 * fit under the per-process fd limit and each (source, gateway) pair's
 * ephemeral ports. It holds connections i = worker, worker + workers, ...
 * (conn i on gateway i mod G, channel i mod C), answers `pusher:ping`, and
 * records every event id each connection got, so the parent can count
 * missing and duplicated deliveries per connection, never just totals.
 *
 * Messages (IPC): in `ScaleJob` as JSON in env SCALE_CLIENT_JOB, then `{ type: "published" }`
 * with the accepted ids per channel; out `progress` every second while
 * connecting and running, then `result`.
 */
import type WebSocket from "ws";
import { pusher } from "./gateway-clients.js";

export interface ScaleJob {
  worker: number;
  workers: number;
  conns: number;
  channels: number;
  /** Gateway ports; conn i connects to ports[i mod G]. */
  ports: number[];
  localAddress: string;
  /** Handshakes in flight in this process. */
  inflight: number;
}

export const scaleChannel = (c: number) => `scale-${c}`;

export type ToParent =
  | {
      type: "progress";
      worker: number;
      connected: number;
      failed: number;
      closed: number;
      deliveries: number;
      perGateway: number[];
      /** Epoch ms when every connection of this process was up or had failed. */
      doneAt?: number;
      firstError?: string;
      /** Why connections closed after subscribing: "<code> <reason>" → count. */
      closes: Record<string, number>;
    }
  | {
      type: "result";
      worker: number;
      connected: number;
      deliveries: number;
      missing: number;
      duplicated: number;
      unexpected: number;
      closed: number;
      closes: Record<string, number>;
      /** publish→receive ms of every delivery. */
      latencies: number[];
    };

export type ToWorker =
  | { type: "connect" }
  | { type: "published"; byChannel: Record<string, number[]> };

// `"i":123,"t":456.7` inside the event data, JSON-escaped once by the Pusher frame.
const STAMP = /\\"i\\":(\d+),\\"t\\":([\d.]+)/;
const now = () => performance.timeOrigin + performance.now();

function run(job: ScaleJob): void {
  const send = (m: ToParent) => process.send?.(m);
  const mine: number[] = [];
  for (let i = job.worker; i < job.conns; i += job.workers) mine.push(i);
  /** Event ids received, per local connection index. */
  const got: number[][] = mine.map(() => []);
  const sockets: (WebSocket | undefined)[] = [];
  const latencies: number[] = [];
  const perGateway = job.ports.map(() => 0);
  let connected = 0;
  let failed = 0;
  let closed = 0;
  let deliveries = 0;
  let firstError: string | undefined;
  let doneAt: number | undefined;
  const closes: Record<string, number> = {};

  const progress = () =>
    send({
      type: "progress",
      worker: job.worker,
      connected,
      failed,
      closed,
      deliveries,
      perGateway,
      ...(doneAt ? { doneAt } : {}),
      ...(firstError ? { firstError } : {}),
      closes,
    });
  const ticker = setInterval(progress, 1000);
  // The first report says this process is up (loaded and listening for `connect`).
  progress();

  async function connectAll() {
    let next = 0;
    await Promise.all(
      Array.from({ length: job.inflight }, async () => {
        while (next < mine.length) {
          const k = next++;
          const i = mine[k] as number;
          const g = i % job.ports.length;
          const ids = got[k] as number[];
          let sock: WebSocket | undefined;
          const onFrame = (text: string) => {
            const m = STAMP.exec(text);
            if (m) {
              ids.push(Number(m[1]));
              latencies.push(now() - Number(m[2]));
              deliveries++;
            } else if (text.includes('"pusher:ping"')) {
              sock?.send('{"event":"pusher:pong","data":{}}');
            }
          };
          try {
            sock = await pusher.subscribe(
              job.ports[g] as number,
              i,
              onFrame,
              scaleChannel(i % job.channels),
              job.localAddress,
            );
            sock.on("close", (code, reason) => {
              closed++;
              const why = `${code} ${reason.toString()}`;
              closes[why] = (closes[why] ?? 0) + 1;
            });
            sockets[k] = sock;
            connected++;
            perGateway[g] = (perGateway[g] ?? 0) + 1;
          } catch (err) {
            failed++;
            firstError ??= String(err);
          }
        }
      }),
    );
    doneAt = now();
    progress();
  }

  function finish(byChannel: Record<string, number[]>) {
    clearInterval(ticker);
    let missing = 0;
    let duplicated = 0;
    let unexpected = 0;
    mine.forEach((i, k) => {
      if (!sockets[k]) return; // never connected: counted as failed, not as loss
      const expected = new Set(byChannel[scaleChannel(i % job.channels)] ?? []);
      const seen = new Set<number>();
      for (const id of got[k] as number[]) {
        if (seen.has(id)) duplicated++;
        else if (!expected.has(id)) unexpected++;
        seen.add(id);
      }
      for (const id of expected) if (!seen.has(id)) missing++;
    });
    send({
      type: "result",
      worker: job.worker,
      connected,
      deliveries,
      missing,
      duplicated,
      unexpected,
      closed,
      closes,
      latencies,
    });
  }

  process.on("message", (m: ToWorker) => {
    if (m.type === "connect") void connectAll();
    else if (m.type === "published") finish(m.byChannel);
  });
  // The parent gone (crash, SIGKILL): take the sockets with us.
  process.on("disconnect", () => process.exit(0));
}

// Set only in the forked client processes; scale.ts imports this file for its types.
const job = process.env.SCALE_CLIENT_JOB;
if (job) run(JSON.parse(job) as ScaleJob);
