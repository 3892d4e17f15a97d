import { SignJWT } from "jose";
import { TEST_APP } from "./harness.js";
import { TestClient } from "./ws-client.js";

export interface ChatFrame {
  type: string;
  timestamp?: number;
  id?: string | number | null;
  eventType?: string;
  payload?: Record<string, unknown>;
  error?: { code: string; message: string };
}

export async function chatToken(
  sub: string | undefined,
  claims: Record<string, unknown> = {},
  { ttlSec = 3600, secret = TEST_APP.secret } = {},
): Promise<string> {
  const jwt = new SignJWT(sub === undefined ? claims : { sub, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec);
  return jwt.sign(new TextEncoder().encode(secret));
}

let ids = 0;

/** A chat connection for tests: requests by payloadType, events by eventType. */
export class ChatClient {
  private constructor(readonly ws: TestClient) {}

  /**
   * Connects as `userId` and waits until the inbox replay has been sent:
   * frames queue until then, so the answer to a first request proves it.
   */
  static async connect(
    url: (path: string) => string,
    userId: string,
    {
      contacts,
      key = TEST_APP.key,
      token,
    }: { contacts?: string[]; key?: string; token?: string } = {},
  ): Promise<ChatClient> {
    token ??= await chatToken(userId, contacts ? { contacts } : {});
    const c = new ChatClient(await TestClient.connect(url(`/chat/${key}?token=${token}`)));
    const probe = await c.request("read", { chatId: "nobody", messageId: "ready-probe" });
    if (probe.error?.code !== "not_found") throw new Error(`unexpected ${JSON.stringify(probe)}`);
    return c;
  }

  static raw(url: string): Promise<TestClient> {
    return TestClient.connect(url);
  }

  send(frame: unknown): void {
    this.ws.send(frame);
  }

  /** Sends a request and resolves with its response (success or error). */
  async request(payloadType: string, payload: unknown, id = `r${++ids}`): Promise<ChatFrame> {
    this.ws.send({ type: "request", timestamp: Date.now(), id, payloadType, payload });
    return this.ws.next<ChatFrame>((f) => f.type === "response" && f.id === id);
  }

  /** The response payload; fails the test on an error response. */
  async ok(payloadType: string, payload: unknown): Promise<Record<string, unknown>> {
    const r = await this.request(payloadType, payload);
    if (r.error) throw new Error(`${payloadType} failed: ${r.error.code} ${r.error.message}`);
    return r.payload ?? {};
  }

  /** The next unread event of that type. */
  event(eventType: string, timeoutMs?: number): Promise<ChatFrame> {
    return this.ws.next<ChatFrame>(
      (f) => f.type === "event" && f.eventType === eventType,
      timeoutMs,
    );
  }

  /** Every event received so far (read or not). */
  events(eventType?: string): ChatFrame[] {
    return this.ws.all<ChatFrame>(
      (f) => f.type === "event" && (eventType === undefined || f.eventType === eventType),
    );
  }

  ack(id: number): void {
    this.ws.send({ type: "ack", id: String(id) });
  }

  close(): void {
    this.ws.close();
  }
}
