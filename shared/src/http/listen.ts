import type { TemplatedApp, us_listen_socket } from "uWebSockets.js";
import uWS from "./uws.js";

/** The port could not be bound: another process holds it, or the address is not local. */
export class ListenError extends Error {
  override name = "ListenError";
  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    super(
      `cannot listen on ${host}:${port}: the port is already in use (another Tidings or other server?) or ${host} is not an address of this machine`,
    );
  }
}

/** The native listen's (host, port, options, cb) form, which uWS's typings omit. */
type ListenWithOptions = (
  host: string,
  port: number,
  options: number,
  cb: (socket: us_listen_socket | false) => void,
) => TemplatedApp;

/** Exported by the native module; the typings declare it only inside an enum. */
const EXCLUSIVE = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number })
  .LIBUS_LISTEN_EXCLUSIVE_PORT;

/**
 * Binds exclusively. uWS listens with SO_REUSEPORT by default, so a second
 * gateway on a busy port would start and silently split the traffic with
 * the first; LIBUS_LISTEN_EXCLUSIVE_PORT makes the second bind fail.
 */
export function listenExclusive(
  app: TemplatedApp,
  host: string,
  port: number,
): Promise<us_listen_socket> {
  const listen = app.listen.bind(app) as unknown as ListenWithOptions;
  return new Promise((resolve, reject) => {
    listen(host, port, EXCLUSIVE, (s) => (s ? resolve(s) : reject(new ListenError(host, port))));
  });
}
