import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../../../../shared/src/model.js";
import { type CallRecord, decode, encode, encodeStored, toInbox } from "./codec.js";

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));

describe("chat decode", () => {
  for (const c of fixture("decode.json") as { name: string; frame: string; expect: unknown }[]) {
    it(c.name, () => {
      expect(decode(c.frame)).toEqual(c.expect);
    });
  }

  // A connection cut mid-frame, or a client bug, must give an error value, never a throw.
  it("every truncation of a frame decodes to a value", () => {
    const frame =
      '{"type":"request","timestamp":1,"id":"r1","payloadType":"new","payload":{"chatId":"u2","message":"hi"}}';
    for (let i = 0; i < frame.length; i++) {
      const d = decode(frame.slice(0, i));
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.code).toBe("invalid_payload");
    }
  });

  it("random bytes and random JSON values decode to a value", () => {
    let x = 12345;
    const rand = () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x / 2147483648;
    };
    const values: unknown[] = [0, -1, 1.5, "", "x", true, null, [], {}, [{}], { a: [] }];
    const keys = ["type", "id", "payloadType", "payload", "eventType", "timestamp", "chatId"];
    for (let i = 0; i < 2000; i++) {
      const text = Array.from({ length: Math.floor(rand() * 40) }, () =>
        String.fromCharCode(Math.floor(rand() * 128)),
      ).join("");
      expect(() => decode(text)).not.toThrow();
      const obj: Record<string, unknown> = {};
      for (const k of keys) if (rand() < 0.5) obj[k] = values[Math.floor(rand() * values.length)];
      if (rand() < 0.5) obj.type = ["request", "ack", "event"][Math.floor(rand() * 3)];
      expect(() => decode(JSON.stringify(obj))).not.toThrow();
    }
  });
});

describe("chat encode", () => {
  type Call = [keyof typeof encode, ...unknown[]];
  for (const c of fixture("encode.json") as { name: string; call: Call; frame: unknown }[]) {
    it(c.name, () => {
      const [fn, ...args] = c.call;
      const f = encode[fn] as (...a: unknown[]) => string;
      expect(JSON.parse(f(...args))).toEqual(c.frame);
    });
  }

  for (const c of fixture("stored.json") as {
    name: string;
    event: StoredEvent;
    frame: unknown;
  }[]) {
    it(`stored ${c.name}`, () => {
      expect(JSON.parse(encodeStored(c.event))).toEqual(c.frame);
    });
  }
});

describe("chat inbox events", () => {
  const call: CallRecord = { callId: "k", caller: "u1", callee: "u2", callType: "video" };

  it("new leaves an absent clientMessageId out", () => {
    expect(toInbox.new("u1", { payloadType: "new", chatId: "u2", message: "hi" })).toEqual({
      name: "new",
      userId: "u1",
      data: { chatId: "u1", message: "hi" },
    });
  });

  it("edit and delete take the original clientMessageId when the request has none", () => {
    const edit = toInbox.edit(
      "u1",
      { payloadType: "edit", chatId: "u2", originalMessageId: "evt_3", message: "m" },
      "c-1",
    );
    expect(edit.data).toEqual({
      chatId: "u1",
      originalMessageId: "evt_3",
      originalClientMessageId: "c-1",
      message: "m",
    });
    const del = toInbox.delete("u1", {
      payloadType: "delete",
      chatId: "u2",
      originalMessageId: "evt_3",
      originalClientMessageId: "mine",
    });
    expect(del.data).toEqual({
      chatId: "u1",
      originalMessageId: "evt_3",
      originalClientMessageId: "mine",
    });
  });

  it("receipts name the reader as chatId", () => {
    expect(toInbox.receipt("read", "u2", "evt_3")).toEqual({
      name: "read",
      userId: "u2",
      data: { chatId: "u2", messageId: "evt_3" },
    });
  });

  it("calls: newCall to the callee, closeCall and call to each participant", () => {
    expect(toInbox.newCall(call).data).toEqual({
      callId: "k",
      caller: "u1",
      callType: "video",
      participants: ["u1", "u2"],
    });
    expect(toInbox.closeCall("u2", "k", 7).data).toEqual({ callId: "k", callDuration: 7 });
    expect(toInbox.call("u2", call, 7, "u1").data).toMatchObject({ chatId: "u2", callDuration: 7 });
    expect(toInbox.call("u2", call, 7, "u2").data).toMatchObject({ chatId: "u1", caller: "u1" });
  });
});
