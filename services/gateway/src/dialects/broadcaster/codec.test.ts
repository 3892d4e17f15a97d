import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../../../../shared/src/model.js";
import { decode, decodePublishBody, encode } from "./codec.js";
import { BroadcasterCodes } from "./codes.js";

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));

interface DecodeCase {
  name: string;
  frame: string;
  expect: unknown;
}

describe("broadcaster decode", () => {
  for (const c of fixture("decode.json") as DecodeCase[]) {
    it(c.name, () => {
      expect(decode(c.frame)).toEqual(c.expect);
    });
  }

  // Any prefix of a valid frame is either still valid or an InvalidArgument value, never a throw.
  it("every truncation of a frame decodes to a value", () => {
    const frame = '{"id":4,"method":"publish","params":{"channel":"n","event":"e","payload":[1]}}';
    for (let i = 0; i < frame.length; i++) {
      const d = decode(frame.slice(0, i));
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.code).toBe("InvalidArgument");
    }
  });
});

describe("broadcaster REST body", () => {
  it("takes channel, event and payload", () => {
    expect(decodePublishBody('{"channel":"c","event":"e","payload":"x"}')).toEqual({
      channel: "c",
      event: "e",
      payload: "x",
    });
  });

  it("names what is wrong", () => {
    expect(decodePublishBody("nope")).toBe("frame is not valid JSON");
    expect(decodePublishBody('{"channel":"c"}')).toBe("event must be a string of 1-200 characters");
    expect(decodePublishBody('{"channel":"","event":"e"}')).toMatch(/^channel must be/);
  });
});

describe("broadcaster encode", () => {
  const f = fixture("encode.json") as {
    event: StoredEvent;
    message: string;
    result: string;
    error: string;
    restError: string;
    published: unknown;
    unsubscribed: string;
  };

  it("message notification carries the subscription's seq, not the event's", () => {
    expect(encode.message(f.event, 3)).toBe(f.message);
  });

  it("replies", () => {
    expect(encode.result(7, { success: true })).toBe(f.result);
    expect(encode.error(null, "NotFound", "not subscribed to news")).toBe(f.error);
    expect(encode.restError("Unauthenticated", "unknown API key")).toBe(f.restError);
    expect(encode.published("evt_42", f.event.time)).toEqual(f.published);
  });

  it("unsubscribed names the channel, the subscription and why it ended", () => {
    expect(
      encode.unsubscribed("news", "sub-2", "PermissionDenied", "channel news is not authorized"),
    ).toBe(f.unsubscribed);
  });
});

describe("broadcaster codes", () => {
  // The README is what client authors read; a code missing there is a code nobody handles.
  it("README lists exactly the codes in codes.ts", () => {
    const readme = readFileSync(new URL("./README.md", import.meta.url), "utf8");
    const section = readme.split("## Error codes")[1]?.split("\n## ")[0] ?? "";
    const listed = [...section.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(BroadcasterCodes).sort());
  });
});
