import { expect, it } from "vitest";
import { HeldFrames, MAX_HELD_FRAMES } from "./held-frames.js";

it("holds frames in order up to the bound, then runs them once released", () => {
  const h = new HeldFrames();
  for (let i = 0; i < MAX_HELD_FRAMES; i++) expect(h.offer(`f${i}`)).toBe("held");
  expect(h.offer("one too many")).toBe("full");
  const ran: string[] = [];
  h.release((t) => ran.push(t));
  expect(ran).toEqual(Array.from({ length: MAX_HELD_FRAMES }, (_, i) => `f${i}`));
  expect(h.offer("later")).toBe("run");
  h.release((t) => ran.push(t));
  expect(ran).toHaveLength(MAX_HELD_FRAMES);
});
