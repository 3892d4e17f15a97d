import type { Config } from "../shared/src/config/load.js";
import type { Logger } from "../shared/src/log.js";

/** NATS composition: filled in once the presence service's client lands. */
export async function startClustered(_config: Config, _log: Logger): Promise<void> {
  throw new Error("clustered mode is being wired");
}
