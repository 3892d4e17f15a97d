import type { Json } from "../../../../../shared/src/model.js";
import type { HeldFrames } from "../../core/held-frames.js";
import type { Session } from "../../core/session.js";
import type { Capability } from "./auth.js";

/** A Foony connection: its first frame must be `auth`; frames after it wait for the outcome. */
export interface FoonyConnection {
  /** The `auth` frame came and is being verified. */
  authing: boolean;
  /** Frames that arrived while `auth` was being verified; they run right after `connected`. */
  early: HeldFrames;
  /** Set once `connected` is sent. */
  ready: FoonySession | undefined;
}

/** An authenticated Foony connection: what its commands run on. */
export interface FoonySession {
  session: Session;
  clientId: string;
  capability: Capability;
  /** Channels this connection entered presence on, with its latest data. */
  entered: Map<string, Json | undefined>;
}
