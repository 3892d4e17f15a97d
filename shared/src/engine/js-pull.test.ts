import { describe, expect, it } from "vitest";
import { ackSeqs } from "./js-pull.js";

// A page's messages are matched to their pull and placed by these fields: a
// misread seq or pending count would misorder a replay or end it early.
describe("a delivery's reply subject", () => {
  it("gives consumer, stream seq, consumer seq and pending in the old form", () => {
    expect(ackSeqs("$JS.ACK.TIDINGS_app.c1.1.42.7.1796184491995684261.3")).toEqual({
      consumer: "c1",
      seq: 42,
      cseq: 7,
      pending: 3,
    });
  });

  it("gives the same in the form with domain and account hash", () => {
    expect(ackSeqs("$JS.ACK._.ACCHASH.TIDINGS_app.c1.1.42.7.1796184491995684261.0.rnd")).toEqual({
      consumer: "c1",
      seq: 42,
      cseq: 7,
      pending: 0,
    });
  });

  it("is null for anything else", () => {
    for (const reply of ["", "_INBOX.abc.1", "$JS.ACK.S.c.1.x.1.1.1", "$JS.NAK.S.c.1.2.3.4.5"])
      expect(ackSeqs(reply)).toBeNull();
  });
});
