import type { Engine, LiveSubscription } from "../../../../shared/src/engine/engine.js";
import type { Signal } from "../../../../shared/src/model.js";
import type { Connection } from "./connection.js";

type Handler = (signal: Signal) => void;

interface LocalUser {
  sub: LiveSubscription & { ready: Promise<void> };
  conns: Map<Connection, Handler>;
}

/**
 * Connections signed in as a user on this gateway. Holds one engine user
 * subscription per (app, user) while any local connection of the user is
 * open, and hands each user signal to every one of them.
 */
export class Users {
  private readonly users = new Map<string, LocalUser>();

  constructor(private readonly engine: Engine) {}

  /** Resolves when signals addressed to the user reach `handler`. */
  async add(conn: Connection, appId: string, userId: string, handler: Handler): Promise<void> {
    const key = `${appId}\u0000${userId}`;
    let user = this.users.get(key);
    if (!user) {
      const conns = new Map<Connection, Handler>();
      const sub = this.engine.subscribeUser(appId, userId, (s) => {
        for (const h of conns.values()) h(s);
      });
      user = { sub, conns };
      this.users.set(key, user);
    }
    user.conns.set(conn, handler);
    const entry = user;
    conn.onClose(() => {
      entry.conns.delete(conn);
      if (entry.conns.size === 0 && this.users.get(key) === entry) {
        entry.sub.close();
        this.users.delete(key);
      }
    });
    await user.sub.ready;
  }
}
