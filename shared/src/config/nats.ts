import { readFileSync } from "node:fs";
import { type Authenticator, credsAuthenticator } from "@nats-io/nats-core";
import type { Config } from "./load.js";

/** How every Tidings process authenticates to NATS, from the one config. */
export interface NatsAuthOptions {
  servers: string[];
  user?: string | undefined;
  pass?: string | undefined;
  token?: string | undefined;
  authenticator?: Authenticator | undefined;
  tls?: { caFile: string } | undefined;
}

export function natsAuthOptions(config: Config): NatsAuthOptions {
  return {
    servers: [...(config.natsUrl ?? [])],
    user: config.natsUser,
    pass: config.natsPass,
    token: config.natsToken,
    authenticator: config.natsCredsFile
      ? credsAuthenticator(readFileSync(config.natsCredsFile))
      : undefined,
    tls: config.natsTlsCa ? { caFile: config.natsTlsCa } : undefined,
  };
}
