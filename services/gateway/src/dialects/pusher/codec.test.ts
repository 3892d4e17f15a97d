import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Delivery, StoredEvent } from "../../../../../shared/src/model.js";
import { dataFromPusher, dataToPusher, decode, encode, encodeDelivery } from "./codec.js";
import { PusherClose, PusherCodeText, PusherErrorCode, PusherHttpStatus } from "./codes.js";

/** The frame a delivery encodes to, parsed (the delivery must have one). */
function delivered(channel: string, d: Delivery): Record<string, unknown> {
  const frame = encodeDelivery(channel, d);
  if (frame === null) throw new Error(`no frame for ${d.type} on ${channel}`);
  return JSON.parse(frame);
}

interface Fixture {
  frame: string;
  command?: Record<string, unknown>;
  error?: string;
  /** The channel a refused subscribe named, which owns the refusal. */
  channel?: string;
}
const fixtures = JSON.parse(
  readFileSync(new URL("./fixtures/decode.json", import.meta.url), "utf8"),
) as Fixture[];

describe("pusher codec decode", () => {
  it.each(fixtures.map((f) => [f.frame, f] as const))("%s", (_frame, f) => {
    const d = decode(f.frame);
    if (f.error !== undefined)
      expect(d).toStrictEqual(
        f.channel === undefined
          ? { ok: false, message: f.error }
          : { ok: false, message: f.error, channel: f.channel },
      );
    else {
      // Absent optional fields decode as undefined; toEqual treats both alike.
      expect(d).toEqual({ ok: true, command: f.command });
    }
  });

  it("refuses client event names over 200 characters", () => {
    const d = decode(JSON.stringify({ event: `client-${"x".repeat(200)}`, channel: "private-a" }));
    expect(d.ok).toBe(false);
  });
});

const event = (over: Partial<StoredEvent> = {}): StoredEvent => ({
  channel: "c",
  name: "n",
  data: { a: 1 },
  seq: 5,
  id: "evt_5",
  time: 0,
  ...over,
});

describe("pusher codec encode", () => {
  it("sends server data as JSON strings, as Pusher does", () => {
    expect(JSON.parse(encode.connectionEstablished("1.2", 120))).toEqual({
      event: "pusher:connection_established",
      data: '{"socket_id":"1.2","activity_timeout":120}',
    });
    expect(JSON.parse(encode.subscriptionSucceeded("c"))).toEqual({
      event: "pusher_internal:subscription_succeeded",
      channel: "c",
      data: "{}",
    });
    expect(JSON.parse(encode.error(4001, "x"))).toEqual({
      event: "pusher:error",
      data: { code: 4001, message: "x" },
    });
    expect(JSON.parse(encode.userEvent("u1", "e", "s"))).toEqual({
      event: "e",
      channel: "#server-to-user-u1",
      data: "s",
    });
  });

  it("maps deliveries; sender user_id only on presence channels", () => {
    const d: Delivery = { type: "event", event: event({ userId: "u" }) };
    expect(delivered("news", d)).toEqual({
      event: "n",
      channel: "news",
      data: '{"a":1}',
    });
    expect(delivered("presence-x", d)).toMatchObject({ user_id: "u" });
    const trigger: Delivery = {
      type: "signal",
      signal: {
        kind: "transient",
        name: "client-t",
        data: "raw",
        userId: "u",
        excludeConnectionId: "1.1",
      },
    };
    expect(delivered("private-x", trigger)).toEqual({
      event: "client-t",
      channel: "private-x",
      data: "raw",
    });
  });

  it("maps member and count signals; drops what Pusher has no frame for", () => {
    const joined: Delivery = {
      type: "signal",
      signal: { kind: "member", action: "joined", userId: "u", info: { n: 1 } },
    };
    expect(delivered("presence-x", joined)).toEqual({
      event: "pusher_internal:member_added",
      channel: "presence-x",
      data: '{"user_id":"u","user_info":{"n":1}}',
    });
    expect(encodeDelivery("public", joined)).toBeNull();
    const count: Delivery = { type: "signal", signal: { kind: "subscriber_count", count: 3 } };
    expect(delivered("public", count).data).toBe('{"subscription_count":3}');
    expect(encodeDelivery("presence-x", count)).toBeNull();
    const typing: Delivery = {
      type: "signal",
      signal: { kind: "typing", userId: "u", active: true, excludeConnectionId: "1.1" },
    };
    expect(encodeDelivery("public", typing)).toBeNull();
  });

  it("maps data both ways per the interop table", () => {
    expect(dataFromPusher('{"a":1}', false)).toEqual({ a: 1 });
    expect(dataFromPusher("123", false)).toBe(123);
    expect(dataFromPusher("plain", false)).toBe("plain");
    expect(dataFromPusher('{"nonce":"x"}', true)).toBe('{"nonce":"x"}');
    expect(dataToPusher("plain")).toBe("plain");
    expect(dataToPusher({ a: [1] })).toBe('{"a":[1]}');
    expect(dataToPusher(null)).toBe("null");
  });
});

describe("pusher codes", () => {
  // Operators look codes up in the README; a code missing there is a support ticket.
  it("are all listed in the README, and the README lists no others", () => {
    const readme = readFileSync(new URL("./README.md", import.meta.url), "utf8");
    const listed = new Set([...readme.matchAll(/^\| `(\d{3,4})` \|/gm)].map((m) => Number(m[1])));
    const ours = new Set<number>([
      ...Object.values(PusherClose),
      ...Object.values(PusherErrorCode),
      ...Object.keys(PusherHttpStatus).map(Number),
    ]);
    expect(listed).toEqual(ours);
    for (const code of [...Object.values(PusherClose), ...Object.values(PusherErrorCode)])
      expect(PusherCodeText[code]).toBeTruthy();
  });
});
