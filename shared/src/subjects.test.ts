import { describe, expect, it } from "vitest";
import {
  channelOfSubject,
  channelStream,
  decodeKvKey,
  decodeToken,
  encodeToken,
  eventSubject,
  eventWildcard,
  generatedMsgId,
  InvalidTokenError,
  kvAppFilter,
  kvBucketName,
  kvKey,
  liveSubject,
  liveWildcard,
  MAX_STREAM_PARTITIONS,
  msgIdForKey,
  partitionOf,
  partitionsOfStream,
  signalSubject,
  streamName,
  userSubject,
} from "./subjects.js";

const awkward = [
  "",
  " ",
  "_",
  "__",
  "_abc",
  "-",
  "a.b.c",
  ".",
  "..",
  "*",
  ">",
  "a.*.>",
  "foo bar",
  "tab\there",
  "new\nline",
  "presence-room@#1,2;x=y",
  "private-chat:42",
  "ünïcødé",
  "emoji 🎉🚀",
  "🎉",
  "\u0000nul",
  "$JS.API.STREAM.INFO",
  "x".repeat(200),
  "🎉".repeat(200),
  "_".repeat(200),
];

// A NATS subject token may not contain these; a KV key only allows [-/_=.a-zA-Z0-9].
const subjectTokenOk = /^[^\s.*>]+$/;
const kvKeyCharsOk = /^[-/_=.a-zA-Z0-9]+$/;

describe("encodeToken / decodeToken", () => {
  it.each(awkward)("round-trips %j into one safe token", (name) => {
    const token = encodeToken(name);
    expect(token).toMatch(subjectTokenOk);
    expect(token).toMatch(kvKeyCharsOk);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeToken(token)).toBe(name);
  });

  it("keeps plain names readable", () => {
    expect(encodeToken("chat-room_1")).toBe("chat-room_1");
    expect(encodeToken("ABC")).toBe("ABC");
  });

  it("escapes names that look like escaped tokens", () => {
    // "_YQ" is the escaped form of "a"; the literal name "_YQ" must map elsewhere.
    expect(encodeToken("a")).toBe("a");
    const literal = encodeToken("_YQ");
    expect(literal).not.toBe("_YQ");
    expect(decodeToken(literal)).toBe("_YQ");
  });

  it("is collision-free across the awkward set and their escaped forms", () => {
    const names = [...awkward, ...awkward.map(encodeToken), "a", "A", "YQ", "_YQ"];
    const unique = [...new Set(names)];
    const tokens = new Set(unique.map(encodeToken));
    expect(tokens.size).toBe(unique.length);
  });

  it("rejects tokens it never produces", () => {
    expect(() => decodeToken("")).toThrow(InvalidTokenError);
    expect(() => decodeToken("a.b")).toThrow(InvalidTokenError);
    expect(() => decodeToken("_YR")).toThrow(InvalidTokenError); // non-canonical trailing bits
    expect(() => decodeToken("_YQ==")).toThrow(InvalidTokenError); // padding
    expect(() => decodeToken("_YWJj")).toThrow(InvalidTokenError); // "abc" is verbatim
    expect(() => decodeToken("__w")).toThrow(InvalidTokenError); // invalid UTF-8
  });
});

describe("subject builders", () => {
  it("follow the documented layout", () => {
    expect(streamName("app1")).toBe("TIDINGS_app1");
    expect(eventSubject("app1", "room")).toBe("tdg.app1.ev.room");
    expect(eventWildcard("app1")).toBe("tdg.app1.ev.>");
    expect(liveSubject("app1", "room")).toBe("tdg.app1.live.room");
    expect(liveWildcard("app1")).toBe("tdg.app1.live.>");
    // Signals share the live subject: one subscription per channel receives both.
    expect(signalSubject("app1", "room")).toBe("tdg.app1.live.room");
    expect(userSubject("app1", "u@x.com")).toBe(`tdg.app1.user.${encodeToken("u@x.com")}`);
  });

  it.each(awkward)("keep four tokens for channel %j and app %j", (name) => {
    for (const subject of [
      eventSubject(name, name),
      liveSubject(name, name),
      signalSubject(name, name),
      userSubject(name, name),
    ]) {
      expect(subject.split(".")).toHaveLength(4);
      expect(subject).not.toMatch(/\s/);
    }
    // Stream names may not contain '.', '*', '>', whitespace or path separators.
    expect(streamName(name)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each(awkward)("recover channel %j from event and live subjects", (name) => {
    expect(channelOfSubject("app", eventSubject("app", name))).toBe(name);
    expect(channelOfSubject("app", liveSubject("app", name))).toBe(name);
  });

  it("do not attribute foreign subjects to a channel", () => {
    expect(channelOfSubject("app", eventSubject("other", "room"))).toBeNull();
    expect(channelOfSubject("app", userSubject("app", "room"))).toBeNull();
    expect(channelOfSubject("app", "tdg.app.ev.a.b")).toBeNull();
    expect(channelOfSubject("app", "tdg.app.ev._!!")).toBeNull();
  });
});

describe("KV names", () => {
  it("uses NATS-valid bucket names", () => {
    for (const b of ["cursors", "acks", "reactions", "presence", "chat"]) {
      expect(kvBucketName(b)).toMatch(/^[-_a-zA-Z0-9]+$/);
    }
  });

  it.each(awkward)("round-trips key %j within an app", (key) => {
    const k = kvKey("my app", key);
    expect(k).toMatch(kvKeyCharsOk);
    expect(k.startsWith(".") || k.endsWith(".")).toBe(false);
    expect(decodeKvKey("my app", k)).toBe(key);
    expect(decodeKvKey("other", k)).toBeNull();
  });

  it("filters one app's keys", () => {
    expect(kvAppFilter("a.b")).toBe(`${encodeToken("a.b")}.>`);
    expect(kvKey("a.b", "k").startsWith(kvAppFilter("a.b").slice(0, -1))).toBe(true);
  });
});

describe("message ids", () => {
  it("keeps short keys, hashes long ones, and separates generated ids", () => {
    expect(msgIdForKey("abc")).toBe("k:abc");
    const long = msgIdForKey("x".repeat(500));
    expect(long).toMatch(/^h:[A-Za-z0-9_-]{43}$/);
    expect(msgIdForKey("x".repeat(500))).toBe(long);
    expect(msgIdForKey("y".repeat(500))).not.toBe(long);
    expect(generatedMsgId("abc")).not.toBe(msgIdForKey("abc"));
  });

  // Header values are trimmed and may not hold CR/LF: such keys must be hashed, not sent as is.
  it("hashes keys a NATS header would not carry unchanged", () => {
    const keys = ["k", "k ", " k", "k\t", "a\r\nb", "a\nb", "a\u0000b", "ü"];
    const ids = keys.map(msgIdForKey);
    expect(new Set(ids).size).toBe(keys.length);
    for (const id of ids.slice(1)) expect(id).toMatch(/^h:[A-Za-z0-9_-]{43}$/);
  });
});

describe("stream partitions", () => {
  it("keep today's names at one partition and number them beyond", () => {
    expect(channelStream("app1", "room")).toEqual({
      stream: "TIDINGS_app1",
      eventSubject: "tdg.app1.ev.room",
      liveSubject: "tdg.app1.live.room",
      liveWildcard: "tdg.app1.live.>",
      partition: 0,
    });
    const p = partitionOf("room", 4);
    expect(channelStream("app1", "room", 4)).toEqual({
      stream: `TIDINGS-P${p}of4_app1`,
      eventSubject: `tdg.app1.ev-${p}of4.room`,
      // Live delivery does not depend on the partition.
      liveSubject: "tdg.app1.live.room",
      liveWildcard: "tdg.app1.live.>",
      partition: p,
    });
    expect(eventWildcard("app1", 3, 4)).toBe("tdg.app1.ev-3of4.>");
  });

  // Written down in the README: a change here moves channels and hides their history.
  it("place channels by FNV-1a of the name, modulo the count", () => {
    expect(partitionOf("a", 4)).toBe(0);
    expect(partitionOf("b", 4)).toBe(1);
    expect(partitionOf("room-1", 1)).toBe(0);
    // FNV-1a("a") is 0xe40c292c, the published test vector.
    expect(partitionOf("a", 2 ** 31)).toBe(0xe40c292c % 2 ** 31);
    expect([..."abcdefgh"].map((c) => partitionOf(c, 3))).toEqual([1, 1, 2, 1, 2, 2, 0, 1]);
    expect(partitionOf("", 7)).toBe(0x811c9dc5 % 7);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const p = partitionOf(`room-${i}`, 4);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it.each(awkward)("give channel %j one partition whose stream captures it", (name) => {
    const names = channelStream(name, name, 5);
    expect(names.stream).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(names.stream).toBe(streamName(name, names.partition, 5));
    expect(names.eventSubject.split(".")).toHaveLength(4);
    expect(
      names.eventSubject.startsWith(eventWildcard(name, names.partition, 5).slice(0, -1)),
    ).toBe(true);
    expect(channelOfSubject(name, names.eventSubject)).toBe(name);
    expect(partitionsOfStream(name, names.stream)).toBe(5);
  });

  it("never give two apps or layouts one stream name", () => {
    const names = new Set<string>();
    for (const app of ["a", "a_1", "P0of2_a", "-P0of2_a", "TIDINGS"]) {
      for (const n of [1, 2, 3]) {
        for (let p = 0; p < n; p++) {
          const name = streamName(app, p, n);
          expect(names.has(name), name).toBe(false);
          names.add(name);
          expect(partitionsOfStream(app, name)).toBe(n);
        }
      }
    }
    expect(partitionsOfStream("a", "TIDINGS_b")).toBeNull();
    expect(partitionsOfStream("a", "TIDINGS-P2of2_a")).toBeNull();
    expect(partitionsOfStream("a", "TIDINGS-P01of2_a")).toBeNull();
    expect(MAX_STREAM_PARTITIONS).toBe(64);
  });
});
