import WebSocket from "ws";

/** The client's TCP socket underneath `ws` (what `ws` keeps as `_socket`). */
type RawSocket = { pause(): void; resume(): void; cork(): void; uncork(): void };

/**
 * A real WebSocket client for tests that queues every frame it receives,
 * so a test can wait for "the next frame matching X" without racing.
 */
export class TestClient {
  readonly frames: unknown[] = [];
  /** Frames already returned by `next`; others stay available to later calls. */
  private readonly taken = new Set<number>();
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      const text = data.toString();
      let value: unknown = text;
      if (!isBinary) {
        try {
          value = JSON.parse(text);
        } catch {
          value = text;
        }
      }
      this.frames.push(value);
      this.wake();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on("error", () => this.wake());
  }

  static async connect(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, options);
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /**
   * Sends every frame in one socket write, so the server reads them in one
   * go and starts each before any earlier one has finished (a burst).
   */
  sendBurst(frames: unknown[]): void {
    const socket = this.rawSocket();
    socket.cork();
    for (const f of frames) this.send(f);
    socket.uncork();
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The oldest frame not yet taken that matches; non-matching frames stay for later calls. */
  async next<T = Record<string, unknown>>(
    match: (f: T) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.frames.length; i++) {
        if (this.taken.has(i)) continue;
        const f = this.frames[i] as T;
        if (match(f)) {
          this.taken.add(i);
          return f;
        }
      }
      if (this.closed)
        throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching frame in ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** All frames received so far that match (read or not). */
  all<T = Record<string, unknown>>(match: (f: T) => boolean): T[] {
    return (this.frames as T[]).filter(match);
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("connection did not close");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closed;
  }

  /** Stops reading from the socket, so the server's send queue for it grows (slow consumer). */
  pauseReading(): void {
    this.rawSocket().pause();
  }

  resumeReading(): void {
    this.rawSocket().resume();
  }

  close(): void {
    this.ws.close();
  }

  private rawSocket(): RawSocket {
    return (this.ws as unknown as { _socket: RawSocket })._socket;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** `{type, payload}` frames of one type (Herald-shaped). */
export const ofType =
  (type: string) =>
  (f: Record<string, unknown>): boolean =>
    f.type === type;
