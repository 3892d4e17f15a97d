import type { TemplatedApp } from "uWebSockets.js";
import { EngineUnavailableError } from "../../../../shared/src/engine/engine.js";
import { PresenceUnavailableError } from "../../../../shared/src/presence/api.js";
import type { Connection } from "./connection.js";
import type { Dialect, FrameProblem } from "./dialect.js";
import {
  PRESENCE_UNAVAILABLE,
  SessionError,
  type SessionRefusal,
  STORAGE_UNAVAILABLE,
} from "./session-error.js";

/**
 * A failed request, classified once for every dialect: the dialect's own
 * request error, a refusal of the core (limits), storage that is down for
 * now, or a bug (logged here, never shown to the client).
 */
export type Failure<E> =
  | { kind: "request"; error: E }
  | { kind: "refused"; reason: SessionRefusal; channel: string; message: string }
  | { kind: "unavailable"; message: string }
  | { kind: "internal"; message: string };

/** How a connection is closed for a reason the server decides. */
export type CloseWith = readonly [code: number, reason: string] | ((conn: Connection) => void);

/**
 * Runs one request of a connection; a failure goes to the dialect's `fail`
 * with `ref`. Settles (never rejects) once the request is done and a failure
 * answered, for a dialect that holds later frames until then.
 */
export type Run<R> = (ref: R, work: () => Promise<void> | void) => Promise<void>;

export interface DialectSpec<S, R, E> {
  name: string;
  /** uWS route pattern, e.g. "/ws" or "/app/:key". */
  route: string;
  appKeyOf?: (param: string, query: URLSearchParams) => string | undefined;
  /** The dialect's own request error (what its commands throw to answer a client's mistake). */
  isRequestError: (err: unknown) => err is E;
  /** Per-connection state; undefined when the dialect refused the connection at open. */
  open(conn: Connection, run: Run<R>): S | undefined;
  message(conn: Connection, s: S, text: string, run: Run<R>): void;
  /** Answers a failed request in the dialect's terms. */
  fail(conn: Connection, s: S, ref: R, failure: Failure<E>): void;
  /** Answers a frame the server rejected before decoding. */
  reject(conn: Connection, s: S | undefined, problem: FrameProblem): void;
  /** Close for a client that cannot keep up with its sends. */
  slowConsumer: CloseWith;
  /** Close asking the client to reconnect elsewhere (gateway draining). */
  drain: CloseWith;
  /** Close asking the client to reconnect and replay (live events missed). */
  deliveryGap: CloseWith;
  /** The dialect's own cleanup; the core session's (subscriptions, presence) runs after it. */
  closed?(conn: Connection, s: S): void;
  registerHttp?(app: TemplatedApp): void;
}

const DONE: Promise<void> = Promise.resolve();

/**
 * Builds a dialect from its pure parts: the error mapping, per-connection
 * state and the server's close glue are written here once, so a dialect's
 * adapter is its codec, its commands and a few dozen lines.
 */
export function defineDialect<S, R, E>(spec: DialectSpec<S, R, E>): Dialect {
  const states = new WeakMap<Connection, S>();

  const classify = (conn: Connection, err: unknown): Failure<E> => {
    if (spec.isRequestError(err)) return { kind: "request", error: err };
    if (err instanceof SessionError)
      return { kind: "refused", reason: err.reason, channel: err.channel, message: err.message };
    if (err instanceof EngineUnavailableError)
      return { kind: "unavailable", message: STORAGE_UNAVAILABLE };
    if (err instanceof PresenceUnavailableError)
      return { kind: "unavailable", message: PRESENCE_UNAVAILABLE };
    conn.log.error({ err }, `${spec.name} request failed`);
    return { kind: "internal", message: "internal error" };
  };

  const runner =
    (conn: Connection): Run<R> =>
    (ref, work) => {
      let pending: Promise<void> | void;
      try {
        pending = work();
      } catch (err) {
        pending = Promise.reject(err);
      }
      if (!pending) return DONE;
      return pending.catch((err: unknown) => {
        // Classified (and a bug logged) even when the client is gone.
        const failure = classify(conn, err);
        const s = states.get(conn);
        if (conn.closed || s === undefined) return;
        try {
          spec.fail(conn, s, ref, failure);
        } catch (failed) {
          // Settles either way: callers wait on it to release held frames.
          conn.log.error({ err: failed }, `${spec.name} could not answer a failed request`);
        }
      });
    };

  const closeWith = (how: CloseWith) => (conn: Connection) => {
    if (typeof how === "function") how(conn);
    else conn.close(how[0], how[1]);
  };

  return {
    name: spec.name,
    route: spec.route,
    appKeyOf: spec.appKeyOf,
    open(conn) {
      const s = spec.open(conn, runner(conn));
      if (s !== undefined) states.set(conn, s);
    },
    message(conn, text) {
      const s = states.get(conn);
      if (s !== undefined) spec.message(conn, s, text, runner(conn));
    },
    reject(conn, problem) {
      spec.reject(conn, states.get(conn), problem);
    },
    slowConsumer: closeWith(spec.slowConsumer),
    drain: closeWith(spec.drain),
    deliveryGap: closeWith(spec.deliveryGap),
    closed(conn) {
      const s = states.get(conn);
      states.delete(conn);
      if (s !== undefined) spec.closed?.(conn, s);
    },
    registerHttp: spec.registerHttp,
  };
}
