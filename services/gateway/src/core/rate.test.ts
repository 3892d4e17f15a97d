import { expect, it } from "vitest";
import { TokenBucket } from "./rate.js";

it("allows a burst, then the steady rate", () => {
  let t = 0;
  const b = new TokenBucket(10, 20, () => t);
  let ok = 0;
  for (let i = 0; i < 30; i++) if (b.take()) ok++;
  expect(ok).toBe(20);
  t += 500; // half a second refills 5 tokens
  ok = 0;
  for (let i = 0; i < 10; i++) if (b.take()) ok++;
  expect(ok).toBe(5);
});
