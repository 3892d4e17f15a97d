/**
 * The connection's states and the moves between them. Pure: the client
 * drives it and turns every move into a state event.
 *
 *   idle ─▶ connecting ─▶ connected ─▶ disconnected ─▶ reconnecting ─▶ connecting …
 *                 └──────────────────────▶ disconnected (willRetry: false) ─▶ closed
 *   any state ─▶ closed (close())
 */
export type ConnectionState =
  | "idle"
  | "connecting"
  | "connected"
  | "disconnected"
  | "reconnecting"
  | "closed";

const MOVES: Record<ConnectionState, readonly ConnectionState[]> = {
  idle: ["connecting", "closed"],
  connecting: ["connected", "disconnected", "closed"],
  connected: ["disconnected", "closed"],
  // A disconnected client waits for a retry, for the browser to come online
  // (then it connects at once), or stops.
  disconnected: ["reconnecting", "connecting", "closed"],
  reconnecting: ["connecting", "disconnected", "closed"],
  closed: [],
};

export class IllegalTransitionError extends Error {
  override name = "IllegalTransitionError";
}

export class ConnectionStateMachine {
  private current: ConnectionState = "idle";

  get state(): ConnectionState {
    return this.current;
  }

  can(to: ConnectionState): boolean {
    return MOVES[this.current].includes(to);
  }

  /** Moves to `to`; throws on a move the diagram above does not have (an SDK bug). */
  go(to: ConnectionState): void {
    if (!this.can(to)) {
      throw new IllegalTransitionError(`connection cannot go from ${this.current} to ${to}`);
    }
    this.current = to;
  }
}
