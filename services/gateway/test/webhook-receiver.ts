import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import PusherServer from "pusher";
import { TEST_APP } from "./harness.js";

export interface WebhookEventBody {
  name: string;
  channel: string;
  event?: string;
  data?: string;
  socket_id?: string;
  user_id?: string;
}

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** The pusher server SDK's own check of X-Pusher-Key / X-Pusher-Signature. */
  valid: boolean;
  timeMs: number;
  events: WebhookEventBody[];
  /** The status this POST was answered with. */
  status: number;
}

/**
 * A real HTTP webhook receiver on a free port in the test process. `answer`
 * picks each POST's status (default 200); every POST is recorded, answered
 * or not, so retries are visible.
 */
export async function startWebhookReceiver(
  answer: (path: string, attempt: number) => number = () => 200,
): Promise<{
  url: (path: string) => string;
  received: ReceivedWebhook[];
  /** Events delivered (2xx) to `path`, in arrival order. */
  events: (path: string) => WebhookEventBody[];
  [Symbol.asyncDispose](): Promise<void>;
  close(): Promise<void>;
}> {
  const verifier = new PusherServer({ ...TEST_APP, appId: TEST_APP.id, host: "127.0.0.1" });
  const received: ReceivedWebhook[] = [];
  const attempts = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const rawBody = Buffer.concat(chunks).toString("utf8");
      const n = (attempts.get(path) ?? 0) + 1;
      attempts.set(path, n);
      const status = answer(path, n);
      const hook = verifier.webhook({ headers: req.headers, rawBody });
      let body: { time_ms?: number; events?: WebhookEventBody[] } = {};
      try {
        body = JSON.parse(rawBody) as typeof body;
      } catch {
        // Recorded with no events; the test's assertions then fail with the raw body in view.
      }
      received.push({
        path,
        headers: req.headers,
        rawBody,
        valid: hook.isValid(),
        timeMs: body.time_ms ?? 0,
        events: body.events ?? [],
        status,
      });
      res.writeHead(status).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    events: (path) =>
      received
        .filter((r) => r.path === path && r.status >= 200 && r.status < 300)
        .flatMap((r) => r.events),
    close,
    [Symbol.asyncDispose]: close,
  };
}
