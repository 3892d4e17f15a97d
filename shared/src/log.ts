import { pino } from "pino";

export type Logger = pino.Logger;

/**
 * Errors of conditions an operator expects and can read from one line:
 * storage or presence down for now, NATS timing out, unreachable or
 * closing. They are logged by name and message; a stack trace would only
 * say where the waiting happened. Anything else keeps its stack.
 */
const EXPECTED = new Set([
  "EngineUnavailableError",
  "PresenceUnavailableError",
  "TimeoutError",
  "NoResponders",
  "ConnectionError",
  "ClosedConnectionError",
  "DrainingConnectionError",
]);

export function isExpectedError(err: unknown): err is Error {
  return err instanceof Error && EXPECTED.has(err.name);
}

function serializeError(err: unknown): unknown {
  if (isExpectedError(err)) return { type: err.name, message: err.message };
  return pino.stdSerializers.err(err as Error);
}

export function createLogger(
  level: string,
  name: string,
  /** Where lines go (default stdout); tests read them from a stream. */
  destination?: pino.DestinationStream,
): Logger {
  const options = { level, name, base: { pid: process.pid }, serializers: { err: serializeError } };
  return destination ? pino(options, destination) : pino(options);
}
