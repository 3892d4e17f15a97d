import type { HttpResponse } from "uWebSockets.js";
import { SECURITY_HEADERS } from "./http.js";

/**
 * A server-sent event stream on a uWS response. A client that cannot keep
 * up is not queued for: `send` reports false while the socket is full and
 * the caller skips (a snapshot) or counts what it dropped (a tail).
 */
export class SseStream {
  closed = false;
  private writable = true;
  private readonly onClose: (() => void)[] = [];

  constructor(private readonly res: HttpResponse) {
    res.onAborted(() => this.finish());
    res.cork(() => {
      res.writeStatus("200 OK").writeHeader("content-type", "text/event-stream");
      for (const [k, v] of SECURITY_HEADERS) res.writeHeader(k, v);
      // Proxies that buffer responses would hold events back.
      res.writeHeader("x-accel-buffering", "no");
      res.write(": open\n\n");
    });
  }

  /** False when the event was not written (client gone or not keeping up). */
  send(event: string, data: unknown): boolean {
    if (this.closed || !this.writable) return false;
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    let ok = true;
    this.res.cork(() => {
      ok = this.res.write(text);
    });
    if (!ok) {
      this.writable = false;
      this.res.onWritable(() => {
        this.writable = true;
        return true;
      });
    }
    return true;
  }

  whenClosed(fn: () => void): void {
    if (this.closed) fn();
    else this.onClose.push(fn);
  }

  /** Ends the stream from the server side. */
  end(): void {
    if (this.closed) return;
    this.res.cork(() => this.res.end());
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.onClose.splice(0)) fn();
  }
}
