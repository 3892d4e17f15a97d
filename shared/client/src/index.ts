export { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
export {
  type ClientEvents,
  type ClientOptions,
  type ConnectedInfo,
  type DisconnectedInfo,
  TidingsClient,
  type TokenGrant,
} from "./client.js";
export { type ConnectionState, ConnectionStateMachine } from "./connection-state.js";
export { DedupeWindow } from "./dedupe.js";
export {
  AuthError,
  ClosedError,
  HeraldError,
  type HeraldErrorCode,
  QueueFullError,
  TidingsError,
} from "./errors.js";
export type { FetchParams, HistoryOptions, HistoryPage } from "./history.js";
export { OfflineQueue } from "./offline-queue.js";
export type { WebSocketConstructor, WebSocketLike } from "./platform.js";
export {
  type MemberChange,
  type MissedEvents,
  Stream,
  type StreamEvents,
  type StreamOptions,
  type StreamStatus,
  type SubscribedInfo,
} from "./stream.js";
export type {
  CursorMove,
  HeraldEvent,
  Json,
  Member,
  PresenceChange,
  PublishAck,
  ReactionChange,
  TriggerEvent,
  TypingChange,
  UserStatus,
} from "./wire.js";
