import type { PublishOptions } from "../../../shared/src/engine/engine.js";
import { MemoryEngine } from "../../../shared/src/engine/memory.js";
import type { EventInput } from "../../../shared/src/model.js";

/** Memory storage that fails publishes on channels starting with "broken", to observe server errors. */
export class BrokenEngine extends MemoryEngine {
  override async publish(
    appId: string,
    channel: string,
    event: EventInput,
    options?: PublishOptions,
  ) {
    if (channel.startsWith("broken")) throw new Error("disk on fire");
    return super.publish(appId, channel, event, options);
  }
}
