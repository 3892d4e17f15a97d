import type { HttpResponse } from "uWebSockets.js";

export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

/** Whether the client went away; a handler checks it before every write after an await. */
export interface Aborted {
  aborted: boolean;
}

/**
 * Reads a request body. uWS hands out chunks that are only valid during the
 * callback, so each is copied. Rejects past `limit` bytes; resolves null
 * if the client went away. uWS keeps one abort handler per response and
 * this one replaces the caller's, so it goes on setting `state.aborted`
 * after the body is read: the reply that follows checks it as before.
 */
export function readBody(res: HttpResponse, limit: number, state: Aborted): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    res.onAborted(() => {
      state.aborted = true;
      done = true;
      resolve(null);
    });
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > limit) {
        done = true;
        reject(new BodyTooLargeError(`body over ${limit} bytes`));
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) {
        done = true;
        resolve(Buffer.concat(chunks));
      }
    });
  });
}
