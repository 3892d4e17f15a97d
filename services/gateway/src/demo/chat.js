// The demo chat: everything here goes through @tidings/client (served from /demo/sdk/).
import { TidingsClient } from "/demo/sdk/index.js";

const params = new URLSearchParams(location.search);
const me = params.get("user") || `guest-${Math.random().toString(36).slice(2, 6)}`;
const roomId = `presence-demo-${params.get("room") || "lobby"}`;
const $ = (id) => document.getElementById(id);
$("me").textContent = me;
$("room").textContent = roomId;

const client = new TidingsClient({
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
  key: "app-key",
  // A demo should come back quickly after `npm start` restarts; the default caps at 30 s.
  backoff: { maxMs: 5000 },
  // The development app's token endpoint; a real app's backend signs tokens itself.
  token: async () => {
    const q = new URLSearchParams({ user_id: me, room: roomId });
    const res = await fetch(`/demo/token?${q}`);
    if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
    return res.json();
  },
});
window.tidings = client;

client.on("state", (state) => {
  $("state").textContent = state;
  $("state").dataset.state = state;
});
client.on("reconnecting", ({ attempt, delay }) => {
  $("notice").textContent = `reconnecting (attempt ${attempt}, in ${delay} ms)`;
});
client.on("connected", () => {
  $("notice").textContent = "";
});
client.on("closed", ({ reason }) => {
  $("notice").textContent = `closed: ${reason}`;
});

const room = client.subscribe(roomId);
/** Messages by event id: history and live delivery may overlap, the page never shows one twice. */
const messages = new Map();
const reactions = new Map();
const cursors = new Map();

function show(e) {
  if (e.type !== "message" || messages.has(e.event_id)) return;
  messages.set(e.event_id, e);
  render();
}

function render() {
  const list = $("messages");
  const sorted = [...messages.values()].sort((a, b) => a.seq - b.seq);
  list.replaceChildren(
    ...sorted.map((e) => {
      const li = document.createElement("li");
      li.className = "msg";
      li.dataset.id = e.event_id;
      li.dataset.seq = String(e.seq);
      li.dataset.user = e.user_id;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = e.user_id;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = typeof e.body?.text === "string" ? e.body.text : JSON.stringify(e.body);
      const react = document.createElement("span");
      react.className = "reactions";
      const counts = reactions.get(e.event_id) ?? {};
      for (const emoji of ["👍", "❤️"]) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = `${emoji} ${counts[emoji] ?? 0}`;
        b.onclick = () => room.react(e.event_id, emoji);
        react.append(b);
      }
      const readers = [...cursors].filter(([u, seq]) => u !== me && seq === e.seq).map(([u]) => u);
      const read = document.createElement("span");
      read.className = "read";
      read.textContent = readers.length ? `✓ read by ${readers.join(", ")}` : "";
      li.append(who, text, react, read);
      return li;
    }),
  );
  list.scrollTop = list.scrollHeight;
  markRead();
}

/** Read up to the newest message while the tab is visible. */
function markRead() {
  const newest = Math.max(0, ...[...messages.values()].map((e) => e.seq));
  if (newest > (room.cursor ?? 0) && document.visibilityState === "visible") room.markRead(newest);
}
document.addEventListener("visibilitychange", markRead);

async function loadHistory() {
  for await (const page of room.history({ pageSize: 100 })) {
    for (const e of page) show(e);
    break; // the newest 100 are enough for a demo
  }
}

room.on("subscribed", (info) => {
  if (!info.resumed) loadHistory().catch((err) => ($("notice").textContent = err.message));
});
room.on("event", show);
room.on("missed", () => {
  $("notice").textContent = "some messages were missed; reloaded history";
  loadHistory();
});
room.on("reaction", (r) => {
  const counts = reactions.get(r.event_id) ?? {};
  counts[r.emoji] = r.count;
  reactions.set(r.event_id, counts);
  render();
});
room.on("cursor", (c) => {
  cursors.set(c.user_id, c.seq);
  render();
});
room.on("members", (members) => {
  $("members").replaceChildren(
    ...members.map((m) => {
      const li = document.createElement("li");
      li.dataset.user = m.user_id;
      li.dataset.status = m.status;
      li.textContent = m.user_id === me ? `${m.user_id} (you)` : m.user_id;
      return li;
    }),
  );
});
room.on("typing", (_change, typing) => {
  $("typing").textContent = typing.length ? `${typing.join(", ")} typing…` : "";
});
room.on("error", (err) => {
  $("notice").textContent = err.message;
});

$("text").addEventListener("input", () => room.keystroke());
$("send").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  room.stopTyping();
  // Queued while offline and resent after a reconnect: stored once either way.
  room.publish("message", { text }).catch((err) => ($("notice").textContent = err.message));
});
$("status").addEventListener("change", () => client.setStatus($("status").value));
