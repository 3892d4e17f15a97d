import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { at } from "../../../shared/test/defined.js";
import { ChatClient, type ChatFrame } from "./chat-client.js";
import { startTwoGateways, type TidingsProcess, type TwoGateways } from "./processes.js";

const texts = (events: ChatFrame[]) => events.map((e) => e.payload?.message);

describe("chat across two gateways on one NATS", () => {
  let cluster: TwoGateways;
  let g1: TidingsProcess;
  let g2: TidingsProcess;
  const open: ChatClient[] = [];
  const on = async (g: TidingsProcess, userId: string, contacts?: string[]) => {
    const c = await ChatClient.connect(g.url, userId, contacts ? { contacts } : {});
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = await startTwoGateways();
    ({ g1, g2 } = cluster);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("messages and receipts cross gateways; only the recipient's devices get them", async () => {
    const a1 = await on(g1, "n-a");
    const a2 = await on(g2, "n-a");
    const b = await on(g2, "n-b");
    const { messageId } = await a1.ok("new", { chatId: "n-b", message: "hello" });
    expect((await b.event("new")).payload).toMatchObject({ messageId, chatId: "n-a" });
    await b.ok("read", { chatId: "n-a", messageId });
    for (const a of [a1, a2])
      expect((await a.event("read")).payload).toEqual({ chatId: "n-b", messageId });
    expect(a2.events("new")).toHaveLength(0);
  });

  it("a new retried on the other gateway with the same clientMessageId is stored once", async () => {
    const s1 = await on(g1, "n-s");
    const s2 = await on(g2, "n-s");
    const r = await on(g1, "n-r");
    const x = await s1.ok("new", { chatId: "n-r", message: "once", clientMessageId: "k1" });
    const y = await s2.ok("new", { chatId: "n-r", message: "once", clientMessageId: "k1" });
    expect(y.messageId).toBe(x.messageId);
    await s1.ok("new", { chatId: "n-r", message: "marker" });
    await r.ws.next<ChatFrame>((f) => f.payload?.message === "marker");
    expect(texts(r.events("new"))).toEqual(["once", "marker"]);
  });

  it("acks on one gateway hold on the other: only unacked events come again", async () => {
    const a = await on(g1, "n-c");
    for (const m of ["1", "2", "3"]) await a.ok("new", { chatId: "n-d", message: m });
    const phone = await on(g1, "n-d");
    await phone.ws.next<ChatFrame>((f) => f.payload?.message === "3");
    const got = phone.events("new");
    const [e1, e2, e3] = [at(got, 0), at(got, 1), at(got, 2)] as const;
    phone.ack(e1.id as number);
    phone.ack(e3.id as number);
    await waitUntilAcked(g2, "n-d", e3.id as number);
    phone.close();
    await phone.ws.waitClosed();
    const laptop = await on(g2, "n-d");
    await a.ok("new", { chatId: "n-d", message: "4" });
    await laptop.ws.next<ChatFrame>((f) => f.payload?.message === "4");
    expect(texts(laptop.events("new"))).toEqual(["2", "4"]);
    expect(laptop.events("new")[0]?.id).toBe(e2.id);
  });

  it("typing and online/offline cross gateways", async () => {
    const w = await on(g1, "n-w", ["n-x"]);
    const x = await on(g2, "n-x");
    expect((await w.event("online")).payload).toEqual({ userId: "n-x" });
    x.send({
      type: "event",
      timestamp: Date.now(),
      eventType: "typing",
      payload: { chatId: "n-w" },
    });
    expect((await w.event("typing")).payload).toEqual({ chatId: "n-x" });
    x.close();
    expect((await w.event("offline", 10_000)).payload).toEqual({ userId: "n-x" });
  });
});

/**
 * Acks are written asynchronously; the only outside view of them is a
 * later connect. Poll by connecting a throwaway device until the acked
 * event no longer comes back, then close it (its own acks: none).
 */
async function waitUntilAcked(g: TidingsProcess, userId: string, seq: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = await ChatClient.connect(g.url, userId);
    const replayed = probe.events().some((e) => e.id === seq);
    probe.close();
    await probe.ws.waitClosed();
    if (!replayed) return;
    if (Date.now() > deadline) throw new Error(`ack of ${seq} never stored`);
  }
}
