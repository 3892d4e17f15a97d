import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../../../../shared/src/model.js";
import { decode, encode, messageIdOf, seqOfMessageId } from "./codec.js";
import { FoonyCodes } from "./codes.js";

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));

interface DecodeCase {
  name: string;
  frame: string;
  expect: unknown;
}

describe("foony decode", () => {
  for (const c of fixture("decode.json") as DecodeCase[]) {
    it(c.name, () => {
      expect(decode(c.frame)).toEqual(c.expect);
    });
  }

  // Any prefix of a valid frame is a 40001 value, never a throw.
  it("every truncation of a frame decodes to a value", () => {
    const frame = '{"t":"pub","channel":"room","name":"chat","data":{"a":[1,2]},"id":12}';
    for (let i = 0; i < frame.length; i++) {
      const d = decode(frame.slice(0, i));
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.code).toBe(40001);
    }
  });
});

describe("foony message ids", () => {
  it("round-trip through the seq", () => {
    for (const seq of [1, 9, 10, 123456789, Number.MAX_SAFE_INTEGER]) {
      expect(seqOfMessageId(messageIdOf(seq))).toBe(seq);
    }
  });

  it("refuse anything else", () => {
    for (const id of ["", "m_", "m_0", "m_01", "m_-1", "evt_3", "m_1e3", "m_99999999999999999"])
      expect(seqOfMessageId(id)).toBeNull();
  });
});

describe("foony encode", () => {
  const f = fixture("encode.json") as Record<string, string> & {
    event: StoredEvent;
    httpEvent: StoredEvent;
  };

  it("msg names its sender only when there is one", () => {
    expect(encode.msg(f.event)).toBe(f.msg);
    expect(encode.msg(f.httpEvent)).toBe(f.httpMsg);
  });

  it("control frames", () => {
    expect(encode.connected("1.2", 15000, "ann")).toBe(f.connected);
    expect(encode.ack(3)).toBe(f.ack);
    expect(encode.err(4, 40300, "no publish capability for room")).toBe(f.err);
    expect(encode.err(undefined, 40101, "first frame must be auth")).toBe(f.errNoId);
    expect(encode.pong()).toBe(f.pong);
  });

  it("presEvt and histRes", () => {
    const signal = {
      kind: "entry" as const,
      action: "enter" as const,
      clientId: "ann",
      connectionId: "1.2",
      data: { mood: "ok" },
    };
    expect(encode.presEvt("room", signal, 1700000000999)).toBe(f.presEvt);
    expect(encode.histRes(5, "room", [f.event, f.httpEvent], true)).toBe(f.histRes);
  });
});

describe("foony codes", () => {
  // The README is what client authors read; a code missing there is a code nobody handles.
  it("README lists exactly the codes in codes.ts", () => {
    const readme = readFileSync(new URL("./README.md", import.meta.url), "utf8");
    const section = readme.split("## Error codes")[1]?.split("\n## ")[0] ?? "";
    const listed = [...section.matchAll(/^\| `(\d+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(FoonyCodes).sort());
  });
});
