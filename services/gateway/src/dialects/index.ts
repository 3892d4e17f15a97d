import type { Dialect, DialectContext, DialectSettings } from "../core/dialect.js";
import { createBroadcasterDialect } from "./broadcaster/adapter.js";
import { createChatDialect } from "./chat/adapter.js";
import { createFoonyDialect } from "./foony/adapter.js";
import { createHeraldDialect } from "./herald/adapter.js";
import { createPusherDialect } from "./pusher/adapter.js";

/** Every dialect this gateway speaks; each picks its own route at upgrade. */
export function createDialects(ctx: DialectContext, settings: DialectSettings): Dialect[] {
  return [
    createHeraldDialect(ctx),
    createBroadcasterDialect(ctx),
    createFoonyDialect(ctx, settings),
    createChatDialect(ctx),
    createPusherDialect(ctx, settings),
  ];
}
