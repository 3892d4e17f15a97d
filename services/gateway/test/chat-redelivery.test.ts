import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { at } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import { ackKey, parseAckState } from "../src/dialects/chat/inbox.js";
import { ChatClient, type ChatFrame } from "./chat-client.js";
import { startTestGateway, TEST_APP, type TestGateway } from "./harness.js";

let gw: TestGateway;
const open: ChatClient[] = [];
let n = 0;
const u = (name: string) => `${name}-${n}`;

const connect = async (userId: string) => {
  const c = await ChatClient.connect(gw.url, userId);
  open.push(c);
  return c;
};

/** Resolves once the user's stored ack state covers `seqs`. */
const acked = (userId: string, seqs: number[]) =>
  waitFor(
    async () => {
      const entry = await gw.engine.kv(TEST_APP.id, "chat").get(ackKey(userId));
      const s = entry ? parseAckState(entry.value) : { floor: 0, acked: [] };
      return seqs.every((q) => q <= s.floor || s.acked.includes(q));
    },
    { what: `acks ${seqs} of ${userId}` },
  );

const ids = (events: ChatFrame[]) => events.map((e) => e.id as number);
const texts = (events: ChatFrame[]) => events.map((e) => e.payload?.message);

beforeAll(async () => {
  // The replay race test sends hundreds of requests from one client.
  gw = await startTestGateway({ env: { TIDINGS_MAX_MESSAGE_RATE: "100000" } });
});
afterAll(async () => {
  await gw.stop();
});
beforeEach(() => {
  n++;
});
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

describe("chat inbox redelivery", () => {
  it("events sent while offline arrive on connect, in order, with increasing ids", async () => {
    const a = await connect(u("a"));
    for (const m of ["1", "2", "3"]) await a.ok("new", { chatId: u("b"), message: m });
    const b = await connect(u("b"));
    await b.ws.next<ChatFrame>((f) => f.payload?.message === "3");
    const got = b.events("new");
    expect(texts(got)).toEqual(["1", "2", "3"]);
    const seqs = ids(got);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(3);
  });

  it("unacked events come again on another device, in order; acked ones never", async () => {
    const a = await connect(u("a"));
    for (const m of ["1", "2", "3", "4"]) await a.ok("new", { chatId: u("b"), message: m });
    const phone = await connect(u("b"));
    await phone.ws.next<ChatFrame>((f) => f.payload?.message === "4");
    const got = phone.events("new");
    const [e1, e2, e3, e4] = [at(got, 0), at(got, 1), at(got, 2), at(got, 3)] as const;
    phone.ack(e1.id as number);
    phone.ack(e3.id as number);
    await acked(u("b"), [e1.id as number, e3.id as number]);
    phone.close();

    const laptop = await connect(u("b"));
    await a.ok("new", { chatId: u("b"), message: "5" });
    await laptop.ws.next<ChatFrame>((f) => f.payload?.message === "5");
    expect(ids(laptop.events("new"))).toEqual([e2.id, e4.id, expect.any(Number)]);
    expect(texts(laptop.events("new"))).toEqual(["2", "4", "5"]);
  });

  it("every connected device gets the replay and the live events", async () => {
    const a = await connect(u("a"));
    await a.ok("new", { chatId: u("b"), message: "old" });
    const d1 = await connect(u("b"));
    const d2 = await connect(u("b"));
    await a.ok("new", { chatId: u("b"), message: "new" });
    for (const d of [d1, d2]) {
      await d.ws.next<ChatFrame>((f) => f.payload?.message === "new");
      expect(texts(d.events("new"))).toEqual(["old", "new"]);
    }
  });

  it("an inbox fully acked replays nothing, and the ack floor moves up", async () => {
    const a = await connect(u("a"));
    for (const m of ["1", "2"]) await a.ok("new", { chatId: u("b"), message: m });
    const b = await connect(u("b"));
    await b.ws.next<ChatFrame>((f) => f.payload?.message === "2");
    const seqs = ids(b.events("new"));
    for (const s of seqs) b.ack(s);
    await acked(u("b"), seqs);
    b.close();

    const again = await connect(u("b"));
    await a.ok("new", { chatId: u("b"), message: "3" });
    await again.ws.next<ChatFrame>((f) => f.payload?.message === "3");
    expect(texts(again.events("new"))).toEqual(["3"]);
    // The replay saw 1 and 2 acked: they fold into the floor and leave the list.
    await waitFor(async () => {
      const entry = await gw.engine.kv(TEST_APP.id, "chat").get(ackKey(u("b")));
      const s = entry ? parseAckState(entry.value) : undefined;
      return s !== undefined && s.floor === seqs[1] && s.acked.length === 0;
    });
  });

  it("no duplicate and no gap when events arrive while the replay runs", async () => {
    const a = await connect(u("a"));
    const total = 300;
    for (let i = 0; i < 100; i++) await a.ok("new", { chatId: u("b"), message: `m${i}` });
    const sending = (async () => {
      for (let i = 100; i < total; i++) await a.ok("new", { chatId: u("b"), message: `m${i}` });
    })();
    const b = await connect(u("b"));
    await sending;
    await b.ws.next<ChatFrame>((f) => f.payload?.message === `m${total - 1}`, 15_000);
    const got = b.events("new");
    expect(texts(got)).toEqual(Array.from({ length: total }, (_, i) => `m${i}`));
    const seqs = ids(got);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
  });

  it("receipts and call events are redelivered like messages", async () => {
    const a = await connect(u("a"));
    const b = await connect(u("b"));
    const { messageId } = await a.ok("new", { chatId: u("b"), message: "m" });
    a.close();
    await b.ok("read", { chatId: u("a"), messageId });
    const a2 = await connect(u("a"));
    expect((await a2.event("read")).payload).toEqual({ chatId: u("b"), messageId });
  });
});
