/**
 * The few platform features the SDK uses, reached through `globalThis` so
 * the build needs neither DOM nor Node types and runs in both.
 */

/** What the SDK needs of a WebSocket: the browser's, Node 22's global one, or `ws`'s. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The WebSocket OPEN readyState, the same in every implementation. */
export const OPEN = 1;

export type TimerHandle = { readonly __timer: unique symbol };

interface Globals {
  setTimeout(cb: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle | undefined): void;
  WebSocket?: WebSocketConstructor;
  crypto?: { getRandomValues(a: Uint8Array): Uint8Array };
  addEventListener?: (type: string, cb: () => void) => void;
  removeEventListener?: (type: string, cb: () => void) => void;
  navigator?: { onLine?: boolean };
  document?: { visibilityState?: string };
  window?: unknown;
}

const g = globalThis as unknown as Globals;

export const setTimer = (cb: () => void, ms: number): TimerHandle => {
  const h = g.setTimeout(cb, ms);
  // Node: a pending reconnect or ping must not keep a script alive on its own.
  (h as unknown as { unref?: () => void }).unref?.();
  return h;
};
export const clearTimer = (h: TimerHandle | undefined): void => {
  if (h !== undefined) g.clearTimeout(h);
};

export function globalWebSocket(): WebSocketConstructor | undefined {
  return g.WebSocket;
}

/** A random hex string; refs built from it must not repeat across clients or page loads. */
export function randomId(bytes = 8): string {
  const a = new Uint8Array(bytes);
  if (g.crypto?.getRandomValues) g.crypto.getRandomValues(a);
  else for (let i = 0; i < bytes; i++) a[i] = Math.floor(Math.random() * 256);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Browser signals (online/offline, tab visible) where a `window` exists;
 * elsewhere a no-op. Returns the function that removes the listeners.
 */
export function watchBrowser(handlers: {
  online(): void;
  offline(): void;
  visible(): void;
}): () => void {
  if (typeof g.window === "undefined" || !g.addEventListener || !g.removeEventListener) {
    return () => {};
  }
  const add = g.addEventListener.bind(g);
  const remove = g.removeEventListener.bind(g);
  const onVisibility = () => {
    if (g.document?.visibilityState === "visible") handlers.visible();
  };
  add("online", handlers.online);
  add("offline", handlers.offline);
  // visibilitychange fires on document, but bubbles to window listeners only in
  // some engines; document.addEventListener is not in our typed surface, so use it loosely.
  const doc = g.document as unknown as {
    addEventListener?: (t: string, cb: () => void) => void;
    removeEventListener?: (t: string, cb: () => void) => void;
  };
  doc?.addEventListener?.("visibilitychange", onVisibility);
  return () => {
    remove("online", handlers.online);
    remove("offline", handlers.offline);
    doc?.removeEventListener?.("visibilitychange", onVisibility);
  };
}

/** False only where the platform says so (a browser that knows it is offline). */
export function platformOnline(): boolean {
  return g.navigator?.onLine !== false;
}
