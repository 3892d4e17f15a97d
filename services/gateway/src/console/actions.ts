import { isValidChannel } from "../../../../shared/src/channels.js";
import type { Json } from "../../../../shared/src/engine/engine.js";
import type { Logger } from "../../../../shared/src/log.js";
import type { GatewayContext } from "../core/dialect.js";
import { PusherHttpError } from "../dialects/pusher/codes.js";
import { type ApiRequest, PusherHttpApi } from "../dialects/pusher/http-api.js";
import { inScope, type Session } from "./auth.js";
import { ConsoleHttpError } from "./http.js";

export interface ActionRecord {
  at: number;
  who: string;
  scope: string;
  session: string;
  remoteAddress: string;
  action: "publish" | "terminate" | "block" | "unblock";
  appId: string;
  channel?: string | undefined;
  userId?: string | undefined;
  name?: string | undefined;
  ok: boolean;
  error?: string | undefined;
}

const KEEP = 200;

/**
 * Console actions, done by the same handlers as the HTTP API (its checks,
 * metrics and signals), each logged with who did it and kept for the
 * console's own action list.
 */
export class ConsoleActions {
  private readonly api: PusherHttpApi;
  private readonly recent: ActionRecord[] = [];

  constructor(
    private readonly ctx: GatewayContext,
    private readonly log: Logger,
  ) {
    this.api = new PusherHttpApi(ctx);
  }

  list(session: Session): ActionRecord[] {
    return this.recent
      .filter((r) => inScope(session.scope, r.appId))
      .slice(-50)
      .reverse();
  }

  async publish(s: Session, remote: string, b: Record<string, unknown>): Promise<void> {
    const appId = this.app(s, b.app);
    const channel = str(b.channel, "channel");
    const name = str(b.name, "name");
    const data = (b.data ?? null) as Json;
    await this.run(s, remote, { action: "publish", appId, channel, name }, () =>
      this.api.events(this.request(appId, [], { name, channel, data })),
    );
  }

  async terminate(s: Session, remote: string, b: Record<string, unknown>): Promise<void> {
    const appId = this.app(s, b.app);
    const userId = str(b.user_id, "user_id");
    await this.run(s, remote, { action: "terminate", appId, userId }, () =>
      this.api.terminate(this.request(appId, [userId], undefined)),
    );
  }

  async block(s: Session, remote: string, b: Record<string, unknown>): Promise<void> {
    const appId = this.app(s, b.app);
    const channel = str(b.channel, "channel");
    const userId = str(b.user_id, "user_id");
    const blocked = b.blocked !== false;
    if (!isValidChannel(channel)) throw new ConsoleHttpError(400, "invalid channel name");
    await this.run(
      s,
      remote,
      { action: blocked ? "block" : "unblock", appId, channel, userId },
      () =>
        blocked
          ? this.api.block(this.request(appId, [channel], { user_id: userId }), true)
          : this.api.block(this.request(appId, [channel, userId], undefined), false),
    );
  }

  private app(s: Session, v: unknown): string {
    const appId = str(v, "app");
    if (!this.ctx.apps.byId(appId)) throw new ConsoleHttpError(404, `unknown app ${appId}`);
    if (!inScope(s.scope, appId))
      throw new ConsoleHttpError(403, "app outside this session's scope");
    return appId;
  }

  private request(appId: string, params: string[], body: unknown): ApiRequest {
    return {
      app: this.ctx.apps.byId(appId)!,
      params,
      query: new URLSearchParams(),
      body,
      idempotencyKey: undefined,
    };
  }

  private async run(
    s: Session,
    remoteAddress: string,
    what: Pick<ActionRecord, "action" | "appId" | "channel" | "userId" | "name">,
    act: () => Promise<unknown>,
  ): Promise<void> {
    const record: ActionRecord = {
      at: Date.now(),
      who: s.who,
      scope: s.scope.kind === "cluster" ? "cluster" : `app:${s.scope.appId}`,
      session: s.id.slice(0, 8),
      remoteAddress,
      ...what,
      ok: true,
    };
    try {
      await act();
    } catch (err) {
      record.ok = false;
      record.error = err instanceof Error ? err.message : String(err);
      throw err instanceof PusherHttpError ? new ConsoleHttpError(err.status, err.message) : err;
    } finally {
      this.recent.push(record);
      if (this.recent.length > KEEP) this.recent.splice(0, this.recent.length - KEEP);
      this.log.info({ console: record }, `console action ${record.action} by ${record.who}`);
    }
  }
}

export function str(v: unknown, what: string): string {
  if (typeof v !== "string" || v === "" || v.length > 200)
    throw new ConsoleHttpError(400, `${what} must be 1-200 characters`);
  return v;
}
