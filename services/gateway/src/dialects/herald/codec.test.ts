import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../../../../shared/src/model.js";
import { expectDefined } from "../../../../../shared/test/defined.js";
import { decode, encode, encodeDelivery, encodeUserSignal, REF_MAX } from "./codec.js";

interface Fixture {
  frame: string;
  ok?: { ref?: string | number; command: unknown };
  error?: string;
  ref?: string;
}

const fixtures: Fixture[] = JSON.parse(
  readFileSync(new URL("./fixtures/decode.json", import.meta.url), "utf8"),
);

describe("herald decode", () => {
  it.each(fixtures.map((f) => [f.frame, f] as const))("%s", (_frame, f) => {
    const d = decode(f.frame);
    if (f.ok) expect(d).toEqual({ ok: true, ref: f.ok.ref, command: f.ok.command });
    else expect(d).toEqual({ ok: false, ref: f.ref, code: "invalid_payload", message: f.error });
  });
});

const event: StoredEvent = {
  channel: "room",
  seq: 7,
  id: "evt_7",
  name: "message",
  data: { text: "hi" },
  userId: "u1",
  time: Date.UTC(2026, 0, 2, 3, 4, 5),
};

describe("herald encode", () => {
  it("encodes stored events as event.new with RFC 3339 time and empty meta", () => {
    expect(JSON.parse(expectDefined(encodeDelivery("room", { type: "event", event })))).toEqual({
      type: "event.new",
      payload: {
        event_id: "evt_7",
        stream_id: "room",
        seq: 7,
        type: "message",
        body: { text: "hi" },
        meta: {},
        user_id: "u1",
        created_at: "2026-01-02T03:04:05.000Z",
      },
    });
  });

  it("leaves user_id out for events without a sender (HTTP API)", () => {
    const payload = JSON.parse(encode.eventNew({ ...event, userId: undefined })).payload;
    expect("user_id" in payload).toBe(false);
  });

  it.each([
    [
      { kind: "transient", name: "t", data: 1, userId: "u", excludeConnectionId: "1.1" },
      {
        type: "event.new",
        payload: { stream_id: "room", type: "t", body: 1, user_id: "u", ephemeral: true },
      },
    ],
    [
      { kind: "typing", userId: "u", active: true, excludeConnectionId: "1.1" },
      { type: "typing", payload: { stream_id: "room", user_id: "u", active: true } },
    ],
    [
      { kind: "cursor", userId: "u", seq: 3, excludeConnectionId: "1.1" },
      { type: "cursor.moved", payload: { stream_id: "room", user_id: "u", seq: 3 } },
    ],
    [
      { kind: "reaction", userId: "u", eventId: "evt_1", emoji: "x", action: "add", count: 2 },
      {
        type: "reaction.changed",
        payload: {
          stream_id: "room",
          event_id: "evt_1",
          emoji: "x",
          user_id: "u",
          action: "add",
          count: 2,
        },
      },
    ],
    [
      { kind: "member", action: "joined", userId: "u" },
      { type: "member.joined", payload: { stream_id: "room", user_id: "u" } },
    ],
    [
      { kind: "member", action: "left", userId: "u" },
      { type: "member.left", payload: { stream_id: "room", user_id: "u" } },
    ],
    [
      { kind: "subscriber_count", count: 4 },
      { type: "stream.subscriber_count", payload: { stream_id: "room", count: 4 } },
    ],
    [
      { kind: "status", userId: "u", status: "away" },
      { type: "presence.changed", payload: { user_id: "u", status: "away" } },
    ],
  ] as const)("encodes signal %j", (signal, expected) => {
    expect(
      JSON.parse(
        expectDefined(encodeDelivery("room", { type: "signal", signal: signal as never })),
      ),
    ).toEqual(expected);
  });

  it("shows nothing for signals Herald has no frame for", () => {
    expect(encodeDelivery("room", { type: "signal", signal: { kind: "terminate" } })).toBeNull();
  });

  it("encodes watchlist changes and replies with their ref", () => {
    expect(
      JSON.parse(expectDefined(encodeUserSignal({ kind: "watch", userId: "b", online: true }))),
    ).toEqual({
      type: "watchlist.online",
      payload: { user_id: "b" },
    });
    expect(
      JSON.parse(expectDefined(encodeUserSignal({ kind: "watch", userId: "b", online: false })))
        .type,
    ).toBe("watchlist.offline");
    expect(JSON.parse(encode.error("r1", "forbidden", "no"))).toEqual({
      type: "error",
      ref: "r1",
      payload: { code: "forbidden", message: "no" },
    });
    expect(JSON.parse(encode.eventAck(3, "evt_1", 1))).toEqual({
      type: "event.ack",
      ref: 3,
      payload: { event_id: "evt_1", seq: 1 },
    });
  });
});

describe("refs", () => {
  it("refuses a ref longer than REF_MAX, which would be kept as an idempotency key", () => {
    const frame = (ref: string) => JSON.stringify({ type: "ping", ref });
    expect(decode(frame("r".repeat(REF_MAX)))).toMatchObject({
      ok: true,
      ref: "r".repeat(REF_MAX),
    });
    expect(decode(frame("r".repeat(REF_MAX + 1)))).toEqual({
      ok: false,
      ref: undefined,
      code: "invalid_payload",
      message: `ref must be at most ${REF_MAX} characters`,
    });
  });
});
