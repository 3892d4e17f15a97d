import { isValidChannel } from "../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../shared/src/config/apps.js";
import type { Logger } from "../../../../shared/src/log.js";
import type { Json } from "../../../../shared/src/model.js";
import { ApiError } from "../api/errors.js";
import type { ServerApi } from "../api/server-api.js";
import type { GatewayContext } from "../core/dialect.js";
import { PusherHttpError } from "../dialects/pusher/codes.js";
import { type ApiRequest, PusherHttpApi } from "../dialects/pusher/http-requests.js";
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
 * Console actions, done by the server API the HTTP APIs use (its checks,
 * metrics and signals; publishing with the Pusher HTTP API's checks on the
 * event), each logged with who did it and kept for the console's own
 * action list.
 */
export class ConsoleActions {
  private readonly api: ServerApi;
  private readonly pusher: PusherHttpApi;
  private readonly recent: ActionRecord[] = [];

  constructor(
    private readonly ctx: GatewayContext,
    private readonly log: Logger,
  ) {
    this.api = ctx.api;
    this.pusher = new PusherHttpApi(this.api, "console");
  }

  list(session: Session): ActionRecord[] {
    return this.recent
      .filter((r) => inScope(session.scope, r.appId))
      .slice(-50)
      .reverse();
  }

  async publish(s: Session, remote: string, b: Record<string, unknown>): Promise<void> {
    const app = this.app(s, b.app);
    const channel = str(b.channel, "channel");
    const name = str(b.name, "name");
    const data = (b.data ?? null) as Json;
    await this.run(s, remote, { action: "publish", appId: app.id, channel, name }, () =>
      this.pusher.events(request(app, { name, channel, data })),
    );
  }

  async terminate(s: Session, remote: string, b: Record<string, unknown>): Promise<void> {
    const app = this.app(s, b.app);
    const userId = str(b.user_id, "user_id");
    await this.run(s, remote, { action: "terminate", appId: app.id, userId }, async () =>
      this.api.terminate(app, userId),
    );
  }

  async block(s: Session, remote: string, b: Record<string, unknown>): Promise<void> {
    const app = this.app(s, b.app);
    const channel = str(b.channel, "channel");
    const userId = str(b.user_id, "user_id");
    const blocked = b.blocked !== false;
    if (!isValidChannel(channel)) throw new ConsoleHttpError(400, "invalid channel name");
    await this.run(
      s,
      remote,
      { action: blocked ? "block" : "unblock", appId: app.id, channel, userId },
      () => this.api.setBlocked(app, channel, userId, blocked),
    );
  }

  private app(s: Session, v: unknown): AppConfig {
    const appId = str(v, "app");
    const app = this.ctx.apps.byId(appId);
    if (!app) throw new ConsoleHttpError(404, `unknown app ${appId}`);
    if (!inScope(s.scope, appId))
      throw new ConsoleHttpError(403, "app outside this session's scope");
    return app;
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
      throw err instanceof PusherHttpError || err instanceof ApiError
        ? new ConsoleHttpError(err.status, err.message)
        : err;
    } finally {
      this.recent.push(record);
      if (this.recent.length > KEEP) this.recent.splice(0, this.recent.length - KEEP);
      this.log.info({ console: record }, `console action ${record.action} by ${record.who}`);
    }
  }
}

/** A Pusher HTTP API request as the console makes it: no route parameters, query or key. */
function request(app: AppConfig, body: unknown): ApiRequest {
  return { app, params: [], query: new URLSearchParams(), body, idempotencyKey: undefined };
}

export function str(v: unknown, what: string): string {
  if (typeof v !== "string" || v === "" || v.length > 200)
    throw new ConsoleHttpError(400, `${what} must be 1-200 characters`);
  return v;
}
