/**
 * Ports for test servers that must keep a port across a restart (a
 * nats-server node killed and started again, the routes naming each other).
 *
 * A port the OS picked (`listen(0)`, nats-server's `-1`) comes from the
 * ephemeral range (here 32768–60999), the same range every outgoing TCP
 * connection takes its source port from: between closing a probe and the
 * server binding, or while a node is down for a restart, any client socket
 * on the box may take it, and the server then fails with "address already
 * in use". So these ports are chosen below that range, where the OS never
 * hands out ports on its own, and each vitest worker draws from its own
 * slice so two test files running at once never pick the same one. Each is
 * still probed before use: something outside the suite may hold it.
 */
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const LOW = 10_000;
const SLICES = 8;

/** The first port the OS may pick on its own (ip_local_port_range), or Linux's default. */
function ephemeralStart(): number {
  try {
    const [first] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    if (first !== undefined && first > LOW + SLICES * 100) return first;
  } catch {
    // Not Linux: assume its default.
  }
  return 32_768;
}

const sliceSize = Math.floor((ephemeralStart() - LOW) / SLICES);
/** 1-based in a vitest run; absent when a script (a bench) uses the harness. */
const worker = Number(process.env.VITEST_POOL_ID ?? 0) % SLICES;
const sliceStart = LOW + worker * sliceSize;
// A random start, so processes that share a slice (two suites at once) rarely meet.
let next = Math.floor(Math.random() * sliceSize);

async function bindable(port: number): Promise<boolean> {
  const probe = createServer();
  probe.listen(port, "127.0.0.1");
  try {
    await Promise.race([
      once(probe, "listening"),
      once(probe, "error").then(([err]) => {
        throw err;
      }),
    ]);
  } catch {
    return false;
  }
  await new Promise((resolve) => probe.close(resolve));
  return true;
}

/** A port on 127.0.0.1 that nothing holds now and no client socket will take. */
export async function reservePort(): Promise<number> {
  for (let tries = 0; tries < sliceSize; tries++) {
    const port = sliceStart + (next++ % sliceSize);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${sliceStart}-${sliceStart + sliceSize - 1}`);
}
