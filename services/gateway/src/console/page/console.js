// The Tidings operator console. Plain DOM, no framework, no CDN: every
// byte comes from the gateway. Text is only ever set with textContent, so
// channel names, user ids and event data cannot inject markup.

const API = "/console/api";
const $ = (id) => document.getElementById(id);

/** Session as the server gave it; the CSRF token lives only in memory. */
let session = null;
let clusterStream = null;
let tailStream = null;
let inspected = null;
const totalHistory = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function call(method, path, body) {
  const headers = {};
  if (method !== "GET") {
    headers["content-type"] = "application/json";
    if (session) headers["x-csrf-token"] = session.csrf;
  }
  const res = await fetch(`${API}/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const json = await res.json().catch(() => ({}));
  if (res.status === 401 && path !== "login") {
    showLogin("Session expired; log in again.");
    throw new Error(json.error || "not logged in");
  }
  if (!res.ok) throw new Error(json.error || `HTTP ${res.status}`);
  return json;
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    t.hidden = true;
  }, 4000);
}

// ---- login ---------------------------------------------------------------

function showLogin(message = "") {
  session = null;
  clusterStream?.close();
  tailStream?.close();
  clusterStream = null;
  tailStream = null;
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

function showApp(s) {
  session = s;
  $("login").hidden = true;
  $("app").hidden = false;
  const scope = s.scope.kind === "cluster" ? "whole cluster" : `app ${s.scope.appId}`;
  $("who").textContent =
    `${s.who} · ${scope} · until ${new Date(s.expiresAt).toLocaleTimeString()}`;
  for (const id of ["channel-app", "user-app"]) {
    const select = $(id);
    select.replaceChildren(...s.apps.map((a) => el("option", { value: a }, a)));
  }
  openClusterStream();
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    const s = await call("POST", "login", {
      secret: $("login-secret").value,
      app: $("login-app").value.trim(),
      who: $("login-who").value.trim(),
    });
    // The secret is not kept anywhere once the session exists.
    $("login-secret").value = "";
    showApp(s);
  } catch (err) {
    $("login-error").textContent = err.message;
  }
});

$("logout").addEventListener("click", async () => {
  await call("POST", "logout").catch(() => {});
  showLogin("Logged out.");
});

for (const b of document.querySelectorAll("button.tab")) {
  b.addEventListener("click", () => {
    for (const t of document.querySelectorAll("button.tab")) t.classList.toggle("active", t === b);
    for (const s of document.querySelectorAll(".tab-body"))
      s.hidden = s.id !== `tab-${b.dataset.tab}`;
    if (b.dataset.tab === "actions") loadActions();
  });
}

// ---- pictures ------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

/** A sparkline of `values` (nulls skipped), scaled to its own maximum. */
function sparkline(values, cls = "") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", `spark ${cls}`);
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  const nums = values.filter((v) => typeof v === "number");
  const max = Math.max(1, ...nums);
  const n = Math.max(2, values.length);
  const points = values
    .map((v, i) =>
      typeof v === "number"
        ? `${((i / (n - 1)) * 100).toFixed(2)},${(29 - (v / max) * 28).toFixed(2)}`
        : null,
    )
    .filter(Boolean)
    .join(" ");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points);
  svg.append(line);
  return svg;
}

function bars(values) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark bars");
  svg.setAttribute("viewBox", `0 0 ${values.length * 4} 30`);
  svg.setAttribute("preserveAspectRatio", "none");
  const max = Math.max(1, ...values);
  values.forEach((v, i) => {
    const r = document.createElementNS(SVG, "rect");
    const h = (v / max) * 29;
    r.setAttribute("x", String(i * 4));
    r.setAttribute("y", String(30 - h));
    r.setAttribute("width", "3");
    r.setAttribute("height", String(h));
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${v}`;
    r.append(title);
    svg.append(r);
  });
  return svg;
}

const fmtBytes = (n) =>
  n >= 1 << 30
    ? `${(n / (1 << 30)).toFixed(1)} GiB`
    : n >= 1 << 20
      ? `${(n / (1 << 20)).toFixed(1)} MiB`
      : n >= 1024
        ? `${(n / 1024).toFixed(1)} KiB`
        : `${n} B`;
const ago = (t) => `${Math.max(0, Math.round((Date.now() - t) / 1000))} s ago`;
const rate = (v) => (v === null || v === undefined ? "—" : `${v}/s`);

// ---- cluster view --------------------------------------------------------

function openClusterStream() {
  clusterStream?.close();
  clusterStream = new EventSource(`${API}/cluster/stream`);
  clusterStream.addEventListener("cluster", (e) => renderCluster(JSON.parse(e.data)));
  clusterStream.addEventListener("error", () => {
    // EventSource reconnects by itself; a lapsed session shows as a 401 on the next call.
    if (clusterStream.readyState === EventSource.CLOSED) call("GET", "session").catch(() => {});
  });
}

function renderCluster(snap) {
  const gateways = snap.processes.filter((p) => p.kind === "gateway");
  const total = gateways
    .filter((g) => g.state !== "silent")
    .reduce((n, g) => n + (g.connections ?? 0), 0);
  totalHistory.push(total);
  if (totalHistory.length > 120) totalHistory.shift();
  $("total-connections").textContent = String(total);
  $("total-connections").dataset.value = String(total);
  $("total-spark").replaceChildren(sparkline(totalHistory));

  const n = snap.nats;
  $("nats").replaceChildren(
    n
      ? el(
          "dl",
          { class: "proc" },
          el("dt", {}, "state"),
          el(
            "dd",
            {},
            el(
              "span",
              { class: `badge ${n.connected ? "state-up" : "state-silent"}` },
              n.connected ? "connected" : "disconnected",
            ),
          ),
          el("dt", {}, "server"),
          el("dd", {}, `${n.serverName ?? ""} ${n.server} ${n.version ? `v${n.version}` : ""}`),
          el("dt", {}, "rtt"),
          el("dd", {}, n.rttMs === undefined ? "—" : `${n.rttMs} ms`),
        )
      : el("p", { class: "muted" }, "In-memory engine: one process, no NATS."),
  );

  $("processes").replaceChildren(
    ...snap.processes.map((p) =>
      el(
        "div",
        {
          class: "card proc",
          "data-kind": p.kind,
          "data-id": p.id,
          "data-state": p.state,
          "data-connections": String(p.connections ?? ""),
        },
        el("h3", {}, `${p.kind} `, el("span", { class: `badge state-${p.state}` }, p.state)),
        el("div", { class: "id" }, p.id),
        el(
          "dl",
          {},
          el("dt", {}, "host"),
          el("dd", {}, `${p.host} · pid ${p.pid}`),
          el("dt", {}, "last heartbeat"),
          el("dd", {}, ago(p.lastSeenAt)),
          ...(p.kind === "gateway"
            ? [
                el("dt", {}, "connections"),
                el("dd", { class: "connections" }, String(p.connections ?? 0)),
                el("dt", {}, "channels"),
                el("dd", {}, String(p.channels ?? 0)),
                el("dt", {}, "msgs in / out"),
                el("dd", {}, `${rate(p.msgsInPerSec)} / ${rate(p.msgsOutPerSec)}`),
              ]
            : [el("dt", {}, "partitions"), el("dd", {}, String(p.partitions ?? 0))]),
          el("dt", {}, "event-loop lag"),
          el("dd", {}, `p99 ${p.loopLagP99Ms} ms · max ${p.loopLagMaxMs} ms`),
          el("dt", {}, "memory"),
          el("dd", {}, `${fmtBytes(p.rssBytes)} rss · ${fmtBytes(p.heapUsedBytes)} heap`),
          el("dt", {}, "NATS"),
          el("dd", {}, p.natsConnected ? "connected" : "not connected"),
        ),
        ...(p.kind === "gateway"
          ? [
              el("div", { class: "spark-label" }, "connections"),
              sparkline(p.history.map((h) => h.connections)),
              ...(p.msgsInPerSec === null
                ? []
                : [
                    el("div", { class: "spark-label" }, "msgs in / s"),
                    sparkline(
                      p.history.map((h) => h.msgsInPerSec),
                      "in",
                    ),
                    el("div", { class: "spark-label" }, "msgs out / s"),
                    sparkline(
                      p.history.map((h) => h.msgsOutPerSec),
                      "out",
                    ),
                  ]),
            ]
          : [
              el("div", { class: "spark-label" }, "event-loop lag (p99)"),
              sparkline(p.history.map((h) => h.loopLagMs)),
            ]),
      ),
    ),
  );

  $("apps")
    .querySelector("tbody")
    .replaceChildren(
      ...snap.apps.map((a) =>
        el(
          "tr",
          {},
          el("td", {}, a.appId),
          el("td", {}, String(a.connections)),
          el("td", {}, String(a.channels)),
          el("td", {}, String(a.subscriptions)),
          el("td", {}, String(a.msgsInPerSec ?? 0)),
          el("td", {}, String(a.msgsOutPerSec ?? 0)),
          el("td", {}, String(a.eventsPerSec ?? 0)),
        ),
      ),
    );
  $("streams")
    .querySelector("tbody")
    .replaceChildren(
      ...(snap.streams ?? []).map((s) =>
        el(
          "tr",
          {},
          el("td", {}, s.stream),
          ...(s.error
            ? [el("td", { colspan: "8", class: "error" }, s.error)]
            : [
                el("td", {}, String(s.messages)),
                el("td", {}, fmtBytes(s.bytes)),
                el("td", {}, String(s.firstSeq)),
                el("td", {}, String(s.lastSeq)),
                el("td", {}, String(s.subjects)),
                el("td", {}, String(s.consumers)),
                el(
                  "td",
                  {},
                  `${s.replicas}${s.followers.length ? ` (${s.followers.map((f) => `${f.name}${f.current ? "" : ` lag ${f.lag}`}`).join(", ")})` : ""}`,
                ),
                el("td", {}, s.leader ?? "—"),
              ]),
        ),
      ),
    );
  if (!snap.streams)
    $("streams")
      .querySelector("tbody")
      .append(
        el(
          "tr",
          {},
          el("td", { colspan: "9", class: "muted" }, "No JetStream (in-memory engine)."),
        ),
      );
}

// ---- channels ------------------------------------------------------------

$("channel-search").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const app = $("channel-app").value;
    const r = await call(
      "GET",
      `channels?app=${encodeURIComponent(app)}&prefix=${encodeURIComponent($("channel-prefix").value)}`,
    );
    $("channel-list")
      .querySelector("tbody")
      .replaceChildren(
        ...r.channels.map((c) =>
          el(
            "tr",
            {
              class: "clickable",
              "data-channel": c.channel,
              onclick: () => openChannel(c.appId, c.channel),
            },
            el("td", {}, c.channel),
            el("td", {}, String(c.subscribers)),
            el(
              "td",
              {},
              Object.entries(c.byDialect)
                .map(([d, k]) => `${d} ${k}`)
                .join(", "),
            ),
            el("td", {}, String(c.gateways.length)),
          ),
        ),
      );
    if (r.channels.length === 0)
      $("channel-list")
        .querySelector("tbody")
        .append(
          el(
            "tr",
            {},
            el("td", { colspan: "4", class: "muted" }, "No live channel with that prefix."),
          ),
        );
  } catch (err) {
    toast(err.message);
  }
});

$("channel-open").addEventListener("click", () => {
  const name = $("channel-open-name").value.trim();
  if (name) openChannel($("channel-app").value, name);
});

async function openChannel(app, channel) {
  inspected = { app, channel };
  $("inspector").hidden = false;
  $("inspector-title").textContent = `${channel} (${app})`;
  $("tail").replaceChildren();
  $("tail-count").textContent = "0";
  $("tail-count").dataset.count = "0";
  openTail(app, channel);
  await refreshChannel();
}

async function refreshChannel() {
  if (!inspected) return;
  const { app, channel } = inspected;
  try {
    const c = await call(
      "GET",
      `channel?app=${encodeURIComponent(app)}&channel=${encodeURIComponent(channel)}&limit=50`,
    );
    $("inspector-subscribers").textContent = String(c.subscribers);
    $("inspector-dialects").replaceChildren(
      ...Object.entries(c.byDialect).map(([d, k]) =>
        el("span", { class: "badge", "data-dialect": d }, `${d} ${k}`),
      ),
    );
    $("inspector-gateways").textContent =
      `${Object.keys(c.byGateway).length} gateway(s) of ${c.gateways} answering; presence counts ${c.subscriberCount}`;
    $("inspector-rate").replaceChildren(bars(c.rate));
    $("inspector-members").replaceChildren(
      ...c.members.map((m) => el("li", {}, `${m.userId} (${m.status})`)),
      ...c.present.map((p) => el("li", {}, `${p.clientId} on ${p.connectionId}`)),
    );
    if (c.members.length + c.present.length === 0)
      $("inspector-members").append(
        el("li", { class: "muted" }, "No members (not a presence channel, or nobody there)."),
      );
    $("inspector-connections")
      .querySelector("tbody")
      .replaceChildren(
        ...c.connections.map((k) =>
          el(
            "tr",
            {},
            el("td", {}, k.userId ?? "(anonymous)"),
            el("td", {}, k.dialect),
            el("td", {}, k.gatewayId.slice(0, 8)),
            el(
              "td",
              {},
              k.userId
                ? el(
                    "button",
                    { class: "small danger", onclick: () => terminate(app, k.userId) },
                    "terminate",
                  )
                : "",
            ),
          ),
        ),
      );
    renderHistory(c.events);
  } catch (err) {
    toast(err.message);
  }
}

function renderHistory(events) {
  $("history")
    .querySelector("tbody")
    .replaceChildren(
      ...events.map((e) =>
        el(
          "tr",
          { "data-seq": String(e.seq) },
          el("td", {}, String(e.seq)),
          el("td", {}, new Date(e.time).toLocaleTimeString()),
          el("td", {}, e.userId ?? "server"),
          el("td", {}, e.via ?? ""),
          el("td", {}, e.name),
          el("td", { class: "data" }, JSON.stringify(e.data)),
        ),
      ),
    );
}

/** History, rate and subscribers follow the tail, at most every two seconds. */
let refreshTimer = null;
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refreshChannel();
  }, 2000);
}

function openTail(app, channel) {
  tailStream?.close();
  $("tail-state").textContent = "connecting…";
  tailStream = new EventSource(
    `${API}/tail?app=${encodeURIComponent(app)}&channel=${encodeURIComponent(channel)}`,
  );
  tailStream.addEventListener("ready", () => {
    $("tail-state").textContent = "live";
    $("tail-state").dataset.live = "true";
  });
  const add = (text) => {
    refreshSoon();
    const list = $("tail");
    list.prepend(el("li", {}, text));
    while (list.children.length > 200) list.lastChild.remove();
    const n = Number($("tail-count").dataset.count) + 1;
    $("tail-count").dataset.count = String(n);
    $("tail-count").textContent = String(n);
  };
  tailStream.addEventListener("event", (e) => {
    const d = JSON.parse(e.data);
    add(
      `#${d.seq} ${new Date(d.time).toLocaleTimeString()} ${d.userId ?? "server"}${d.via ? ` via ${d.via}` : ""} ${d.name} ${JSON.stringify(d.data)}${d.dropped ? ` (${d.dropped} dropped before)` : ""}`,
    );
  });
  tailStream.addEventListener("signal", (e) => {
    const d = JSON.parse(e.data);
    if (d.kind === "subscriber_count") return;
    add(`signal ${d.kind} ${JSON.stringify(d.signal)}`);
  });
  tailStream.addEventListener("error", () => {
    $("tail-state").textContent = "reconnecting…";
    $("tail-state").dataset.live = "false";
  });
}

$("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!inspected) return;
  let data;
  try {
    data = JSON.parse($("publish-data").value);
  } catch {
    $("publish-result").textContent = "Data is not valid JSON.";
    return;
  }
  try {
    await call("POST", "publish", {
      app: inspected.app,
      channel: inspected.channel,
      name: $("publish-name").value,
      data,
    });
    $("publish-result").textContent = `Published at ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    $("publish-result").textContent = err.message;
  }
});

$("block-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!inspected) return;
  const blocked = e.submitter?.dataset.blocked !== "false";
  const user = $("block-user").value.trim();
  try {
    await call("POST", "block", {
      app: inspected.app,
      channel: inspected.channel,
      user_id: user,
      blocked,
    });
    $("block-result").textContent =
      `${user} ${blocked ? "blocked in" : "unblocked from"} ${inspected.channel}.`;
  } catch (err) {
    $("block-result").textContent = err.message;
  }
});

$("replay-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!inspected) return;
  try {
    const r = await call(
      "GET",
      `history?app=${encodeURIComponent(inspected.app)}&channel=${encodeURIComponent(inspected.channel)}&after_seq=${Number($("replay-seq").value) || 0}&limit=100`,
    );
    renderHistory(r.events);
    if (r.truncated) toast("Part of that range already left history.");
  } catch (err) {
    toast(err.message);
  }
});

async function terminate(app, userId) {
  try {
    await call("POST", "terminate", { app, user_id: userId });
    toast(`Terminated ${userId}'s connections.`);
    setTimeout(refreshChannel, 500);
  } catch (err) {
    toast(err.message);
  }
}

// ---- users ---------------------------------------------------------------

let lookedUp = null;

$("user-search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const app = $("user-app").value;
  const userId = $("user-id").value.trim();
  try {
    const r = await call(
      "GET",
      `users?app=${encodeURIComponent(app)}&user_id=${encodeURIComponent(userId)}`,
    );
    lookedUp = { app, userId };
    $("user-status").textContent = `${userId}: ${Object.entries(r.status)
      .map(([a, s]) => `${s} in ${a}`)
      .join(", ")} · ${r.connections.length} connection(s) across ${r.gateways} gateway(s)`;
    $("user-connections")
      .querySelector("tbody")
      .replaceChildren(
        ...r.connections.map((c) =>
          el(
            "tr",
            {},
            el("td", {}, c.connectionId),
            el("td", {}, c.appId),
            el("td", {}, c.dialect),
            el("td", {}, c.gatewayId.slice(0, 8)),
            el("td", {}, c.channels.join(", ")),
            el("td", {}, ago(c.lastSeenAt)),
          ),
        ),
      );
    $("user-terminate").hidden = r.connections.length === 0;
  } catch (err) {
    toast(err.message);
  }
});

$("user-terminate").addEventListener("click", async () => {
  if (!lookedUp) return;
  try {
    await call("POST", "terminate", { app: lookedUp.app, user_id: lookedUp.userId });
    $("user-result").textContent = `Terminated ${lookedUp.userId}'s connections.`;
  } catch (err) {
    $("user-result").textContent = err.message;
  }
});

// ---- action log ----------------------------------------------------------

async function loadActions() {
  try {
    const r = await call("GET", "actions");
    $("action-log")
      .querySelector("tbody")
      .replaceChildren(
        ...r.actions.map((a) =>
          el(
            "tr",
            {},
            el("td", {}, new Date(a.at).toLocaleTimeString()),
            el("td", {}, `${a.who} (${a.scope})`),
            el("td", {}, a.action),
            el("td", {}, a.appId),
            el("td", {}, a.channel ?? ""),
            el("td", {}, a.userId ?? ""),
            el("td", {}, a.ok ? "ok" : a.error),
          ),
        ),
      );
  } catch (err) {
    toast(err.message);
  }
}

// ---- start ---------------------------------------------------------------

call("GET", "session").then(showApp, () => showLogin());
