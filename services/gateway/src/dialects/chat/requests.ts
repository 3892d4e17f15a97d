import { randomUUID } from "node:crypto";
import {
  type EventInput,
  type Json,
  type StoredEvent,
  seqOfEventId,
} from "../../../../../shared/src/model.js";
import type { UserSession } from "../../core/session.js";
import { type CallRecord, type CallType, type Request, toInbox } from "./codec.js";
import { ChatRequestError } from "./codes.js";
import { inboxOf } from "./inbox.js";

/** Stored events a messageId may name: the ones that carry a message. */
const MESSAGES = new Set(["new", "edit"]);

/** A call in the "chat" KV bucket under `call/<callId>`, from newCall until closed. */
interface CallState extends CallRecord {
  startedAt: number;
  /** Set once, by whichever participant's closeCall wins the compare-and-set. */
  callDuration?: number;
  /** Both inboxes have their closeCall and call events. */
  done?: boolean;
}

/**
 * The chat requests, each turned into session calls. A messageId is the id
 * (`evt_<seq>`) of the event that carried the message into the recipient's
 * inbox: unique within the app, and enough to find the stored message again
 * (sender = its `userId`) without an index. So a message can be edited,
 * deleted or receipted while it is in the recipient's inbox history
 * (`historyPerChannel` / `historyMaxAgeSec`); older ones are `not_found`.
 */
export class ChatRequests {
  /** Runs one request of the session's user; resolves with the response payload. */
  async handle(session: UserSession, r: Request, now: number): Promise<Json> {
    const me = session.userId;
    switch (r.payloadType) {
      case "new": {
        notSelf(me, r.chatId);
        // Scoped to the sender: two users may pick the same clientMessageId.
        const key =
          r.clientMessageId === undefined ? undefined : idem("new", me, r.clientMessageId);
        const res = await publish(session, r.chatId, toInbox.new(me, r), key);
        return { messageId: res.id };
      }
      case "edit": {
        const original = await this.ownMessage(session, r.chatId, r.originalMessageId);
        if (original.deleted)
          throw new ChatRequestError("not_found", `message ${r.originalMessageId} was deleted`);
        const res = await publish(
          session,
          r.chatId,
          toInbox.edit(me, r, clientMessageIdOf(original.event)),
        );
        return { messageId: res.id };
      }
      case "delete": {
        const original = await this.ownMessage(session, r.chatId, r.originalMessageId);
        // Deleting twice is a retry: answered, not told to the other side again.
        if (original.deleted) return {};
        await publish(
          session,
          r.chatId,
          toInbox.delete(me, r, clientMessageIdOf(original.event)),
          idem("delete", me, r.originalMessageId),
        );
        // Written after the event so a failure in between leaves a retry that still tells.
        await session.store("chat").create(deletedKey(r.originalMessageId), now);
        return {};
      }
      case "dlvrd":
      case "read": {
        // Receipts are for messages in the reader's own inbox that `chatId` sent.
        const m = await message(session, me, r.messageId);
        if (!m || m.userId !== r.chatId) {
          throw new ChatRequestError(
            "not_found",
            `no message ${r.messageId} from ${r.chatId} to you`,
          );
        }
        await publish(
          session,
          r.chatId,
          toInbox.receipt(r.payloadType, me, r.messageId),
          idem(r.payloadType, me, r.messageId),
        );
        return {};
      }
      case "newCall":
        return this.newCall(session, r.chatId, r.callType, now);
      case "closeCall":
        return this.closeCall(session, r.callId, now);
    }
  }

  private async newCall(
    session: UserSession,
    chatId: string,
    callType: CallType,
    now: number,
  ): Promise<Json> {
    const me = session.userId;
    notSelf(me, chatId);
    const call: CallState = {
      callId: randomUUID(),
      caller: me,
      callee: chatId,
      callType,
      startedAt: now,
    };
    await session.store("chat").create(callKey(call.callId), { ...call });
    await publish(session, chatId, toInbox.newCall(call));
    return { callId: call.callId };
  }

  /**
   * The first close fixes the duration (compare-and-set), then both inboxes
   * get `closeCall` and the stored `call` message under idempotency keys, so
   * a retry, or both participants closing at once, stores each event once.
   */
  private async closeCall(session: UserSession, callId: string, now: number): Promise<Json> {
    const me = session.userId;
    const kv = session.store("chat");
    for (;;) {
      const entry = await kv.get(callKey(callId));
      const call = entry ? parseCall(entry.value) : null;
      if (!entry || !call) throw new ChatRequestError("not_found", `no call ${callId}`);
      if (me !== call.caller && me !== call.callee)
        throw new ChatRequestError("forbidden", `you are not in call ${callId}`);
      if (call.done) return {};
      let revision = entry.revision;
      if (call.callDuration === undefined) {
        call.callDuration = Math.max(0, Math.round((now - call.startedAt) / 1000));
        const written = await kv.update(callKey(callId), { ...call }, revision);
        if (written === null) continue;
        revision = written;
      }
      const duration = call.callDuration;
      for (const owner of [call.caller, call.callee]) {
        const close = toInbox.closeCall(me, callId, duration);
        await publish(session, owner, close, idem("closeCall", callId, owner));
        const stored = toInbox.call(me, call, duration, owner);
        await publish(session, owner, stored, idem("call", callId, owner));
      }
      // Losing this race only means the other closer marked it first.
      const closed = { ...call };
      closed.done = true;
      await kv.update(callKey(callId), closed, revision);
      return {};
    }
  }

  /** The message if `me` sent it to `chatId` (not_found / forbidden otherwise), and whether it is deleted. */
  private async ownMessage(
    session: UserSession,
    chatId: string,
    messageId: string,
  ): Promise<{ event: StoredEvent; deleted: boolean }> {
    const m = await message(session, chatId, messageId);
    if (!m)
      throw new ChatRequestError("not_found", `no message ${messageId} in the chat with ${chatId}`);
    if (m.userId !== session.userId)
      throw new ChatRequestError("forbidden", "only the sender may edit or delete a message");
    const deleted = (await session.store("chat").get(deletedKey(messageId))) !== null;
    return { event: m, deleted };
  }
}

/** A message stored in `owner`'s inbox, by messageId. */
async function message(
  session: UserSession,
  owner: string,
  messageId: string,
): Promise<StoredEvent | null> {
  const seq = seqOfEventId(messageId);
  if (seq === null) return null;
  const e = await session.event(inboxOf(owner), seq);
  return e && MESSAGES.has(e.name) ? e : null;
}

/** Into `to`'s inbox, through the session's one publish path. */
function publish(session: UserSession, to: string, event: EventInput, idempotencyKey?: string) {
  return session.publish(inboxOf(to), event, idempotencyKey);
}

function notSelf(me: string, chatId: string): void {
  // The sender's own devices get no copy of what it sends, so a chat with oneself has no reader.
  if (chatId === me) throw new ChatRequestError("invalid_payload", "chatId is your own user id");
}

/** Idempotency keys are app-wide in the engine: prefix them so no other dialect's collide. */
function idem(kind: string, ...parts: string[]): string {
  return JSON.stringify(["chat", kind, ...parts]);
}

function deletedKey(messageId: string): string {
  return `deleted/${messageId}`;
}

function callKey(callId: string): string {
  return `call/${callId}`;
}

function clientMessageIdOf(e: StoredEvent): string | undefined {
  const d = e.data;
  if (typeof d !== "object" || d === null || Array.isArray(d)) return undefined;
  const v = e.name === "edit" ? d.originalClientMessageId : d.clientMessageId;
  return typeof v === "string" ? v : undefined;
}

function parseCall(v: Json): CallState | null {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const { callId, caller, callee, callType, startedAt, callDuration, done } = v;
  if (
    typeof callId !== "string" ||
    typeof caller !== "string" ||
    typeof callee !== "string" ||
    (callType !== "video" && callType !== "audio") ||
    typeof startedAt !== "number"
  )
    return null;
  const call: CallState = { callId, caller, callee, callType, startedAt };
  if (typeof callDuration === "number") call.callDuration = callDuration;
  if (done === true) call.done = true;
  return call;
}
