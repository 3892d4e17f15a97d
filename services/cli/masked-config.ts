/** `tidings config`: the loaded config as JSON, with nothing in it a log or a screen share should not show. */
import type { AppConfig } from "../../shared/src/config/apps.js";
import type { Config } from "../../shared/src/config/load.js";
import { type ConfigKey, type Field, schema } from "../../shared/src/config/schema.js";

export const MASK = "***";

export function maskedConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === "apps") out.apps = config.apps.map(maskApp);
    else if (key === "warnings") continue;
    else {
      const field = (schema as Record<string, Field>)[key as ConfigKey];
      out[key] = field?.secret && value !== undefined ? MASK : value;
    }
  }
  return out;
}

function maskApp(app: AppConfig): Record<string, unknown> {
  return {
    ...app,
    secret: MASK,
    apiKeys: app.apiKeys.map(() => MASK),
    webhooks: app.webhooks.map((w) => ({ ...w, url: maskUrl(w.url) })),
  };
}

/** A receiver URL may carry basic-auth credentials or a token in its query. */
function maskUrl(href: string): string {
  const url = new URL(href);
  if (url.password) url.password = MASK;
  for (const k of [...url.searchParams.keys()]) url.searchParams.set(k, MASK);
  return url.href;
}
