import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { ChatCodes } from "./codes.js";

// The README is the protocol's documentation: a code missing there, or a stale one, fails here.
it("lists exactly the chat error codes in the README", () => {
  const readme = readFileSync(new URL("./README.md", import.meta.url), "utf8");
  const block =
    readme.split("<!-- chat-codes:begin -->")[1]?.split("<!-- chat-codes:end -->")[0] ?? "";
  const documented = [...block.matchAll(/^\| `([a-z_]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
  expect(Object.fromEntries(documented)).toEqual(ChatCodes);
});
