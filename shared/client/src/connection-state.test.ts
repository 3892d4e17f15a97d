import { describe, expect, it } from "vitest";
import {
  type ConnectionState,
  ConnectionStateMachine,
  IllegalTransitionError,
} from "./connection-state.js";

const walk = (...states: ConnectionState[]) => {
  const m = new ConnectionStateMachine();
  for (const s of states) m.go(s);
  return m.state;
};

describe("ConnectionStateMachine", () => {
  it("walks a connect, a loss, a retry and a reconnect", () => {
    expect(
      walk("connecting", "connected", "disconnected", "reconnecting", "connecting", "connected"),
    ).toBe("connected");
  });

  it("goes from a failed attempt back through reconnecting", () => {
    expect(walk("connecting", "disconnected", "reconnecting", "connecting")).toBe("connecting");
  });

  it("reconnects at once when the browser comes back online", () => {
    expect(walk("connecting", "connected", "disconnected", "connecting")).toBe("connecting");
    expect(walk("connecting", "disconnected", "reconnecting", "disconnected")).toBe("disconnected");
  });

  it("closes from any state and never leaves closed", () => {
    for (const path of [[], ["connecting"], ["connecting", "connected"]] as ConnectionState[][]) {
      expect(walk(...path, "closed")).toBe("closed");
    }
    const m = new ConnectionStateMachine();
    m.go("closed");
    for (const s of ["idle", "connecting", "connected", "reconnecting"] as const) {
      expect(m.can(s)).toBe(false);
      expect(() => m.go(s)).toThrow(IllegalTransitionError);
    }
  });

  it("refuses moves the diagram does not have", () => {
    const m = new ConnectionStateMachine();
    expect(() => m.go("connected")).toThrow(/from idle to connected/);
    m.go("connecting");
    expect(() => m.go("reconnecting")).toThrow(IllegalTransitionError);
  });
});
