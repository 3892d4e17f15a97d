import { decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  EngineUnavailableError,
  type PublishOptions,
  type PublishResult,
} from "../../../shared/src/engine/engine.js";
import { MemoryEngine } from "../../../shared/src/engine/memory.js";
import type { EventInput } from "../../../shared/src/model.js";
import { waitFor } from "../../../shared/test/wait.js";
import { inboxOf } from "../src/dialects/chat/inbox.js";
import { ChatClient, type ChatFrame, chatToken } from "./chat-client.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";

/** Memory engine whose storage can be switched off, for the `internal` error. */
class FlakyEngine extends MemoryEngine {
  failing = false;
  override async publish(
    appId: string,
    channel: string,
    event: EventInput,
    options?: PublishOptions,
  ): Promise<PublishResult> {
    if (this.failing) throw new EngineUnavailableError("storage down (test)");
    return super.publish(appId, channel, event, options);
  }
}

const engine = new FlakyEngine();
let gw: TestGateway;
const open: { close(): void }[] = [];
let n = 0;
/** Fresh user ids per test: inboxes outlive connections in the shared engine. */
const u = (name: string) => `${name}-${n}`;

const connect = async (userId: string, contacts?: string[]) => {
  const c = await ChatClient.connect(gw.url, userId, contacts ? { contacts } : {});
  open.push(c);
  return c;
};
const raw = async (path: string) => {
  const c = await ChatClient.raw(gw.url(path));
  open.push(c);
  return c;
};
const errorOf = (f: ChatFrame) => f.error?.code;

beforeAll(async () => {
  gw = await startTestGateway({ engine });
});
afterAll(async () => {
  await gw.stop();
  await engine.close();
});
beforeEach(() => {
  n++;
});
afterEach(() => {
  engine.failing = false;
  for (const c of open.splice(0)) c.close();
});

describe("chat auth", () => {
  it.each([
    ["no token", async () => "/chat/app-key"],
    ["a malformed token", async () => "/chat/app-key?token=nope"],
    [
      "a wrong secret",
      async () => `/chat/app-key?token=${await chatToken("a", {}, { secret: "x" })}`,
    ],
    [
      "an expired token",
      async () => `/chat/app-key?token=${await chatToken("a", {}, { ttlSec: -10 })}`,
    ],
    ["no sub", async () => `/chat/app-key?token=${await chatToken(undefined)}`],
    ["bad contacts", async () => `/chat/app-key?token=${await chatToken("a", { contacts: "b" })}`],
    ["an unknown app key", async () => `/chat/nope?token=${await chatToken("a")}`],
  ])("closes 4001 on %s", async (_name, path) => {
    const c = await raw(await path());
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it("closes 4001 'token expired' at the token's exp; a request sent after it is not run", async () => {
    // exp is in whole seconds: this token runs out 3-4 s from now.
    const token = await chatToken(u("a"), {}, { ttlSec: 4 });
    const expMs = (decodeJwt(token).exp as number) * 1000;
    const a = await ChatClient.connect(gw.url, u("a"), { token });
    open.push(a);
    const b = await connect(u("b"));
    await a.ok("new", { chatId: u("b"), message: "before" });
    expect((await b.event("new")).payload?.message).toBe("before");

    // Past exp, a frame that reaches the server before its close must be refused too.
    await waitFor(() => Date.now() >= expMs || a.ws.closed !== undefined, {
      what: "the token's exp",
    });
    if (!a.ws.closed)
      a.send({
        type: "request",
        id: "late",
        payloadType: "new",
        payload: { chatId: u("b"), message: "after" },
      });
    expect(await a.ws.waitClosed(10_000)).toEqual({ code: 4001, reason: "token expired" });
    expect(a.ws.all<ChatFrame>((f) => f.id === "late")).toEqual([]);

    const inbox = await gw.engine.history(TEST_APP.id, inboxOf(u("b")), { limit: 100 });
    const messages = inbox.events.map((e) => (e.data as { message?: unknown }).message);
    expect(messages).toContain("before");
    expect(messages).not.toContain("after");
  });
});

describe("chat requests", () => {
  it("new: a response with the messageId, the event to the recipient only", async () => {
    const a1 = await connect(u("a"));
    const a2 = await connect(u("a"));
    const b = await connect(u("b"));
    const res = await a1.ok("new", { chatId: u("b"), message: "Hi", clientMessageId: "c1" });
    expect(res.messageId).toMatch(/^evt_[0-9]+$/);
    const ev = await b.event("new");
    expect(ev).toMatchObject({
      type: "event",
      id: expect.any(Number),
      timestamp: expect.any(Number),
      payload: { messageId: res.messageId, chatId: u("a"), message: "Hi", clientMessageId: "c1" },
    });
    // b answers; once a2 has that, it would have had a copy of a1's message before it.
    await b.ok("new", { chatId: u("a"), message: "back" });
    expect((await a2.event("new")).payload?.message).toBe("back");
    expect(a2.events("new")).toHaveLength(1);
    expect(a1.events("new").map((e) => e.payload?.message)).toEqual(["back"]);
  });

  it("new is idempotent on clientMessageId: same messageId, one event", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    const first = await a.ok("new", { chatId: u("b"), message: "once", clientMessageId: "same" });
    const again = await a.ok("new", { chatId: u("b"), message: "once", clientMessageId: "same" });
    expect(again.messageId).toBe(first.messageId);
    await a.ok("new", { chatId: u("b"), message: "marker" });
    await b.ws.next<ChatFrame>((f) => f.payload?.message === "marker");
    expect(b.events("new").map((e) => e.payload?.message)).toEqual(["once", "marker"]);
  });

  it("clientMessageId is scoped to the sender", async () => {
    const a = await connect(u("a"));
    const c = await connect(u("c"));
    const x = await a.ok("new", { chatId: u("b"), message: "1", clientMessageId: "k" });
    const y = await c.ok("new", { chatId: u("b"), message: "2", clientMessageId: "k" });
    expect(y.messageId).not.toBe(x.messageId);
  });

  it("edit: a new messageId, the edit event with the original clientMessageId", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    const { messageId } = await a.ok("new", {
      chatId: u("b"),
      message: "tpyo",
      clientMessageId: "c7",
    });
    const edit = await a.ok("edit", {
      chatId: u("b"),
      originalMessageId: messageId,
      message: "typo",
    });
    expect(edit.messageId).not.toBe(messageId);
    expect((await b.event("edit")).payload).toEqual({
      messageId: edit.messageId,
      chatId: u("a"),
      originalMessageId: messageId,
      originalClientMessageId: "c7",
      message: "typo",
    });
  });

  it("edit and delete by anyone but the sender: forbidden", async () => {
    const a = await connect(u("a"));
    const c = await connect(u("c"));
    const { messageId } = await a.ok("new", { chatId: u("b"), message: "mine" });
    const target = { chatId: u("b"), originalMessageId: messageId };
    expect(errorOf(await c.request("edit", { ...target, message: "x" }))).toBe("forbidden");
    expect(errorOf(await c.request("delete", target))).toBe("forbidden");
  });

  it("edit, delete, dlvrd and read of unknown messages: not_found", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    const { messageId } = await a.ok("new", { chatId: u("b"), message: "m" });
    for (const originalMessageId of ["evt_999999999", "garbage"]) {
      const target = { chatId: u("b"), originalMessageId };
      expect(errorOf(await a.request("edit", { ...target, message: "x" }))).toBe("not_found");
      expect(errorOf(await a.request("delete", target))).toBe("not_found");
    }
    // Right id, wrong chat: the message is not in that conversation.
    const other = { chatId: u("z"), originalMessageId: messageId };
    expect(errorOf(await a.request("delete", other))).toBe("not_found");
    expect(errorOf(await b.request("dlvrd", { chatId: u("z"), messageId }))).toBe("not_found");
    expect(errorOf(await b.request("read", { chatId: u("a"), messageId: "evt_1" }))).toBe(
      "not_found",
    );
    // The sender cannot receipt its own message: it is not in the sender's inbox.
    expect(errorOf(await a.request("dlvrd", { chatId: u("b"), messageId }))).toBe("not_found");
  });

  it("delete: {} and the event; deleting again tells nobody; edits after it are not_found", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    const { messageId } = await a.ok("new", {
      chatId: u("b"),
      message: "oops",
      clientMessageId: "c9",
    });
    const target = { chatId: u("b"), originalMessageId: messageId };
    expect(await a.ok("delete", target)).toEqual({});
    expect((await b.event("delete")).payload).toEqual({
      chatId: u("a"),
      originalMessageId: messageId,
      originalClientMessageId: "c9",
    });
    expect(await a.ok("delete", target)).toEqual({});
    expect(errorOf(await a.request("edit", { ...target, message: "x" }))).toBe("not_found");
    await a.ok("new", { chatId: u("b"), message: "marker" });
    await b.ws.next<ChatFrame>((f) => f.payload?.message === "marker");
    expect(b.events("delete")).toHaveLength(1);
  });

  it("dlvrd and read: {} to the reader, the receipt to the sender", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    const { messageId } = await a.ok("new", { chatId: u("b"), message: "m" });
    await b.event("new");
    expect(await b.ok("dlvrd", { chatId: u("a"), messageId })).toEqual({});
    expect((await a.event("dlvrd")).payload).toEqual({ chatId: u("b"), messageId });
    expect(await b.ok("read", { chatId: u("a"), messageId })).toEqual({});
    expect((await a.event("read")).payload).toEqual({ chatId: u("b"), messageId });
  });

  it("newCall and closeCall: callId, newCall to the callee, closeCall and call to both", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    const c = await connect(u("c"));
    const { callId } = await a.ok("newCall", { chatId: u("b"), callType: "audio" });
    expect(typeof callId).toBe("string");
    expect((await b.event("newCall")).payload).toEqual({
      callId,
      caller: u("a"),
      callType: "audio",
      participants: [u("a"), u("b")],
    });
    expect(errorOf(await c.request("closeCall", { callId }))).toBe("forbidden");
    expect(errorOf(await c.request("closeCall", { callId: "no-such-call" }))).toBe("not_found");
    expect(await b.ok("closeCall", { callId })).toEqual({});
    for (const [who, other] of [
      [a, u("b")],
      [b, u("a")],
    ] as const) {
      const close = await who.event("closeCall");
      expect(close.payload).toEqual({ callId, callDuration: expect.any(Number) });
      expect((await who.event("call")).payload).toEqual({
        messageId: expect.stringMatching(/^evt_/),
        chatId: other,
        callId,
        caller: u("a"),
        participants: [u("a"), u("b")],
        callType: "audio",
        callDuration: close.payload?.callDuration,
      });
    }
    // Closing again is answered and stores nothing more.
    expect(await a.ok("closeCall", { callId })).toEqual({});
    await b.ok("new", { chatId: u("a"), message: "marker" });
    await a.ws.next<ChatFrame>((f) => f.payload?.message === "marker");
    expect(a.events("closeCall")).toHaveLength(1);
    expect(a.events("call")).toHaveLength(1);
  });

  it("a chat with oneself is invalid_payload", async () => {
    const a = await connect(u("a"));
    expect(errorOf(await a.request("new", { chatId: u("a"), message: "me" }))).toBe(
      "invalid_payload",
    );
    expect(errorOf(await a.request("newCall", { chatId: u("a"), callType: "video" }))).toBe(
      "invalid_payload",
    );
  });

  it("storage down: internal, and the connection carries on", async () => {
    const a = await connect(u("a"));
    engine.failing = true;
    const r = await a.request("new", { chatId: u("b"), message: "lost" });
    expect(r.error).toEqual({ code: "internal", message: expect.any(String) });
    engine.failing = false;
    expect((await a.ok("new", { chatId: u("b"), message: "kept" })).messageId).toBeDefined();
  });
});

describe("chat ephemeral events", () => {
  it("typing reaches every device of the other user with id 0, never the sender", async () => {
    const a = await connect(u("a"));
    const b1 = await connect(u("b"));
    const b2 = await connect(u("b"));
    a.send({
      type: "event",
      timestamp: Date.now(),
      eventType: "typing",
      payload: { chatId: u("b") },
    });
    for (const b of [b1, b2])
      expect(await b.event("typing")).toMatchObject({ id: 0, payload: { chatId: u("a") } });
    expect(a.events("typing")).toHaveLength(0);
  });

  it("typing beyond the client event rate: rate_limited", async () => {
    const a = await connect(u("a"));
    const frame = { type: "event", timestamp: 1, eventType: "typing", payload: { chatId: u("b") } };
    for (let i = 0; i < 40; i++) a.send(frame);
    const err = await a.ws.next<ChatFrame>((f) => f.type === "response" && !!f.error);
    expect(err).toMatchObject({ id: null, error: { code: "rate_limited" } });
  });

  it("typing is never redelivered", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    a.send({ type: "event", timestamp: 1, eventType: "typing", payload: { chatId: u("b") } });
    await b.event("typing");
    b.close();
    await a.ok("new", { chatId: u("b"), message: "after" });
    const again = await connect(u("b"));
    await again.event("new");
    expect(again.events("typing")).toHaveLength(0);
  });

  it("online when a contact's first connection opens, offline when its last closes", async () => {
    const watcher = await connect(u("w"), [u("a")]);
    const a1 = await connect(u("a"));
    expect(await watcher.event("online")).toMatchObject({ id: 0, payload: { userId: u("a") } });
    const a2 = await connect(u("a"));
    a1.close();
    a2.close();
    expect(await watcher.event("offline")).toMatchObject({ id: 0, payload: { userId: u("a") } });
    expect(watcher.events("online")).toHaveLength(1);
    expect(watcher.events("offline")).toHaveLength(1);
  });

  it("only users listing the user in contacts hear of it", async () => {
    const stranger = await connect(u("s"));
    const watcher = await connect(u("w"), [u("a")]);
    await connect(u("a"));
    await watcher.event("online");
    // Same gateway, same signal path: had the stranger been told, it would be there by now.
    await watcher.ok("new", { chatId: u("s"), message: "marker" });
    await stranger.event("new");
    expect(stranger.events("online")).toHaveLength(0);
  });
});

describe("chat bad input", () => {
  const bad = [
    "",
    "{",
    "null",
    "[]",
    '"x"',
    "42",
    '{"type":"request"}',
    '{"type":"request","id":"q","payloadType":"new"}',
    '{"type":"request","id":"q","payloadType":"fly","payload":{}}',
    '{"type":"ack","id":"x1"}',
    '{"type":"event","eventType":"shout","payload":{}}',
    '{"type":"response","id":"q"}',
  ];

  it("answers every malformed frame with invalid_payload and stays up", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    for (const text of bad) {
      a.ws.sendRaw(text);
      const r = await a.ws.next<ChatFrame>((f) => f.type === "response" && !!f.error);
      expect(r.error?.code).toBe("invalid_payload");
    }
    const full =
      '{"type":"request","id":"t","payloadType":"new","payload":{"chatId":"b","message":"m"}}';
    for (let i = 1; i < full.length; i += 7) {
      a.ws.sendRaw(full.slice(0, i));
      expect(errorOf(await a.ws.next<ChatFrame>((f) => f.type === "response"))).toBe(
        "invalid_payload",
      );
    }
    // Still serving this connection and the others.
    await a.ok("new", { chatId: u("b"), message: "still here" });
    expect((await b.event("new")).payload?.message).toBe("still here");
  });

  it("echoes the request id when the frame had one", async () => {
    const a = await connect(u("a"));
    const r = await a.request("new", { chatId: 5, message: "m" }, "bad-1");
    expect(r).toMatchObject({ type: "response", id: "bad-1", error: { code: "invalid_payload" } });
  });

  it("binary frames that are not UTF-8, and oversized frames: invalid_payload", async () => {
    const a = await connect(u("a"));
    a.ws.sendRaw(Buffer.from([0xff, 0xfe, 0x00]), true);
    expect(errorOf(await a.ws.next<ChatFrame>((f) => f.type === "response"))).toBe(
      "invalid_payload",
    );
    a.ws.sendRaw("x".repeat(70_000));
    expect((await a.ws.next<ChatFrame>((f) => f.type === "response")).error?.message).toMatch(
      /too large/,
    );
    await a.ok("new", { chatId: u("b"), message: "fine" });
  });

  it("random byte frames never take the server down", async () => {
    const a = await connect(u("a"));
    let x = 7;
    const next = () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x;
    };
    // Text frames must be UTF-8 (uWS closes on a broken one, as RFC 6455 asks), so
    // random bytes go as binary frames and random characters as text frames.
    for (let i = 0; i < 50; i++) {
      const bytes = Buffer.alloc(1 + (i % 30));
      for (let j = 0; j < bytes.length; j++) bytes[j] = next() % 256;
      a.ws.sendRaw(bytes, true);
      a.ws.sendRaw(String.fromCodePoint(...Array.from(bytes, () => 32 + (next() % 2000))));
    }
    await a.ok("new", { chatId: u("b"), message: "alive" });
    const b = await connect(u("b"));
    expect((await b.event("new")).payload?.message).toBe("alive");
  });

  it("an ack for an event never sent is invalid_payload; an ack of 0 is ignored", async () => {
    const a = await connect(u("a"));
    a.ack(0);
    a.ack(99_999_999);
    const r = await a.ws.next<ChatFrame>((f) => f.type === "response" && !!f.error);
    expect(r).toMatchObject({ id: null, error: { code: "invalid_payload" } });
    expect(a.ws.all<ChatFrame>((f) => !!f.error && f.id === null)).toHaveLength(1);
  });
});

describe("chat app limits", () => {
  let limited: TestGateway;
  beforeAll(async () => {
    limited = await startTestGateway({
      env: { TIDINGS_MAX_MESSAGE_RATE: "2", TIDINGS_MAX_CONNECTIONS: "1" },
    });
  });
  afterAll(async () => {
    await limited.stop();
  });

  it("frames beyond the app's rate: rate_limited, and the connection stays", async () => {
    // Connected first: frames are counted against the app's rate once the app is known.
    const c = await ChatClient.connect(limited.url, "r1");
    open.push(c);
    for (let i = 0; i < 10; i++) c.ack(0);
    const r = await c.ws.next<ChatFrame>((f) => f.type === "response" && f.id === null);
    expect(r.error?.code).toBe("rate_limited");
    expect(c.ws.closed).toBeUndefined();
    // The next test needs the app's only connection slot.
    c.close();
    await c.ws.waitClosed();
  });

  it("a connection beyond the app's quota: rate_limited, then close 1013", async () => {
    const first = await ChatClient.connect(limited.url, "q1");
    open.push(first);
    const second = await ChatClient.raw(
      limited.url(`/chat/app-key?token=${await chatToken("q2")}`),
    );
    open.push(second);
    expect(await second.next<ChatFrame>((f) => f.type === "response")).toMatchObject({
      id: null,
      error: { code: "rate_limited" },
    });
    expect((await second.waitClosed()).code).toBe(1013);
  });
});
