import { createServer, type Socket, connect as tcpConnect } from "node:net";

export interface TcpProxy extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>`: point a client here instead of at the server. */
  readonly url: string;
  /**
   * Stops forwarding in both directions while every socket stays open, and
   * holds new connections without forwarding them: a link that looks up but
   * is dead (a partition, a dead middlebox), which no FIN or RST reveals.
   */
  blackhole(): void;
  close(): Promise<void>;
}

/** A TCP proxy on a loopback port (free unless given) in front of `127.0.0.1:targetPort`. */
export async function tcpProxy(targetPort: number, listenPort = 0): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let dead = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
    // A reset while closing is expected; an unhandled error event would crash the test.
    s.on("error", () => s.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (dead) return;
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    track(upstream);
    const forward = (from: Socket, to: Socket) => {
      from.on("data", (chunk) => {
        if (!dead) to.write(chunk);
      });
      from.once("close", () => {
        if (!dead) to.destroy();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenPort, "127.0.0.1", resolve);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const close = async () => {
    dead = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    blackhole: () => {
      dead = true;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
