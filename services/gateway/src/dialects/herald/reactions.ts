import type { KvStore } from "../../../../../shared/src/engine/engine.js";

/**
 * Adds or removes the user's reaction and returns how many users reacted
 * so; compare-and-set so concurrent reactions on other gateways are not lost.
 */
export async function applyReaction(
  kv: KvStore,
  key: string,
  userId: string,
  action: "add" | "remove",
): Promise<number> {
  for (;;) {
    const entry = await kv.get(key);
    const users = new Set(Array.isArray(entry?.value) ? (entry.value as string[]) : []);
    const had = users.has(userId);
    if (action === "add") users.add(userId);
    else users.delete(userId);
    if (had === (action === "add")) return users.size;
    const value = [...users];
    const written = entry
      ? await kv.update(key, value, entry.revision)
      : await kv.create(key, value);
    if (written !== null) return users.size;
  }
}
