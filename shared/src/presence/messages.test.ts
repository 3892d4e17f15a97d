import { describe, expect, it } from "vitest";
import {
  decodeMessage,
  encodeMessage,
  InvalidPresenceMessageError,
  type PresenceMessage,
} from "./messages.js";
import { PRESENCE_PARTITIONS, partitionOf } from "./subjects.js";

const enc = new TextEncoder();

describe("presence messages", () => {
  // What a gateway encodes, the service must decode to the same value.
  it("round-trips a batch with every report type", () => {
    const m: PresenceMessage = {
      type: "batch",
      gatewayId: "g",
      reports: [
        {
          type: "join",
          appId: "a",
          channel: "c",
          connectionId: "x",
          userId: "u",
          info: { n: 1 },
          member: true,
          maxMembers: 5,
        },
        { type: "leave", appId: "a", channel: "c", connectionId: "x" },
        { type: "open", appId: "a", connectionId: "x", userId: "u", watchlist: ["v"] },
        { type: "close", appId: "a", connectionId: "x" },
        { type: "status", appId: "a", userId: "u", status: "dnd" },
        {
          type: "sync",
          syncId: "s",
          part: 0,
          done: true,
          connections: [
            {
              appId: "a",
              connectionId: "x",
              userId: "u",
              opened: true,
              watchlist: [],
              subs: [{ channel: "c", member: false }],
            },
          ],
        },
      ],
    };
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  // Connection-level presence travels in reports, snapshots and queries; all must round-trip.
  it("round-trips presence reports, snapshot entries and the present query", () => {
    const m: PresenceMessage = {
      type: "batch",
      gatewayId: "g",
      reports: [
        {
          type: "presence",
          appId: "a",
          channel: "c",
          connectionId: "x",
          clientId: "ann",
          action: "update",
          data: { mood: "ok" },
        },
        {
          type: "presence",
          appId: "a",
          channel: "c",
          connectionId: "x",
          clientId: "ann",
          action: "leave",
        },
        {
          type: "sync",
          syncId: "s",
          part: 0,
          done: true,
          connections: [
            {
              appId: "a",
              connectionId: "x",
              opened: false,
              watchlist: [],
              subs: [],
              present: [
                { channel: "c", clientId: "ann", data: [1] },
                { channel: "d", clientId: "ann" },
              ],
            },
          ],
        },
      ],
    };
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
    const q: PresenceMessage = { type: "present", appId: "a", channel: "c" };
    expect(decodeMessage(encodeMessage(q))).toEqual(q);
  });

  // The subjects are open to any NATS client: malformed input is a typed error, never a crash.
  it.each([
    ["not json", "{"],
    ["unknown type", JSON.stringify({ type: "nope" })],
    [
      "bad status",
      JSON.stringify({
        type: "batch",
        gatewayId: "g",
        reports: [{ type: "status", appId: "a", userId: "u", status: "busy" }],
      }),
    ],
    ["missing field", JSON.stringify({ type: "heartbeat" })],
    [
      "bad presence action",
      JSON.stringify({
        type: "batch",
        gatewayId: "g",
        reports: [
          {
            type: "presence",
            appId: "a",
            channel: "c",
            connectionId: "x",
            clientId: "u",
            action: "present",
          },
        ],
      }),
    ],
    [
      "presence entries not an array",
      JSON.stringify({
        type: "batch",
        gatewayId: "g",
        reports: [
          {
            type: "sync",
            syncId: "s",
            part: 0,
            done: true,
            connections: [
              {
                appId: "a",
                connectionId: "x",
                opened: false,
                watchlist: [],
                subs: [],
                present: {},
              },
            ],
          },
        ],
      }),
    ],
    ["non-integer partition", JSON.stringify({ type: "resync", partitions: [1.5] })],
  ])("rejects %s", (_what, text) => {
    expect(() => decodeMessage(enc.encode(text))).toThrow(InvalidPresenceMessageError);
  });

  // Gateways and replicas compute partitions independently; they must agree and stay in range.
  it("maps apps to a stable partition in range", () => {
    for (const app of ["app-id", "", "x.y", "😀"]) {
      const p = partitionOf(app);
      expect(p).toBe(partitionOf(app));
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(PRESENCE_PARTITIONS);
    }
  });
});
