/** Herald frames as the gateway sends them (see the Herald section of Tidings' README). */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Frame {
  type: string;
  ref?: string | number;
  payload: Record<string, unknown>;
}

/** A stored event (`event.new` and `events.batch` entries). */
export interface HeraldEvent {
  event_id: string;
  stream_id: string;
  seq: number;
  type: string;
  body: Json;
  meta: { [key: string]: Json };
  user_id: string;
  created_at: string;
}

/** An ephemeral event from `event.trigger`: no id, no seq, never stored. */
export interface TriggerEvent {
  stream_id: string;
  type: string;
  body: Json;
  user_id: string;
  ephemeral: true;
}

export type UserStatus = "online" | "away" | "dnd" | "offline";

export interface Member {
  user_id: string;
  status: UserStatus | string;
}

export interface PublishAck {
  event_id: string;
  seq: number;
}

export interface TypingChange {
  stream_id: string;
  user_id: string;
  active: boolean;
}

export interface CursorMove {
  stream_id: string;
  user_id: string;
  seq: number;
}

export interface ReactionChange {
  stream_id: string;
  event_id: string;
  emoji: string;
  user_id: string;
  action: "add" | "remove";
  count: number;
}

export interface PresenceChange {
  user_id: string;
  status: UserStatus | string;
}

export function parseFrame(data: unknown): Frame | null {
  if (typeof data !== "string") return null;
  let f: unknown;
  try {
    f = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof f !== "object" || f === null || typeof (f as Frame).type !== "string") return null;
  const frame = f as Frame;
  if (typeof frame.payload !== "object" || frame.payload === null) frame.payload = {};
  return frame;
}
