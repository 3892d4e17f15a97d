/**
 * The Grafana dashboard and the alert rules in the chart name metrics by
 * string: a rename in the code would leave a panel empty and an alert that
 * can never fire. Every metric they name must be exported by a real gateway
 * or presence process (scraped over HTTP, as Prometheus does).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unusedPort } from "../../services/gateway/test/harness.js";
import { spawnTidings, type TidingsProcess } from "../../services/gateway/test/processes.js";
import { CHART_DIR, readYaml } from "./deploy-files.js";
import { type NatsHandle, startNats } from "./nats-harness.js";

const METRIC = /\b(?:tidings|process|nodejs)_[a-z0-9_]+\b/g;

function dashboardExprs(): string[] {
  const dash = JSON.parse(
    readFileSync(join(CHART_DIR, "files/monitoring/dashboard.json"), "utf8"),
  ) as { panels: { targets?: { expr: string }[] }[]; templating: { list: { query?: unknown }[] } };
  return [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dash.templating.list.map((v) => v.query).filter((q): q is string => typeof q === "string"),
  ];
}

function alertExprs(): string[] {
  const rules = readYaml(join(CHART_DIR, "files/monitoring/alerts.yaml")) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  return rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

/** The series names a scrape holds: each metric, with a histogram's _bucket/_sum/_count. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = "", type] = m;
    names.add(name);
    if (type === "histogram" || type === "summary")
      for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
  }
  return names;
}

describe("the dashboard and the alerts", () => {
  let nats: NatsHandle;
  const procs: TidingsProcess[] = [];
  let scraped = new Set<string>();

  beforeAll(async () => {
    nats = await startNats();
    // As the image and the chart run them: metrics on their own port.
    const metricsPorts = [await unusedPort(), await unusedPort()];
    const roles = ["presence", "gateway"] as const;
    for (const [i, role] of roles.entries()) {
      const env = { NATS_URL: nats.url(0), TIDINGS_METRICS_PORT: String(metricsPorts[i]) };
      procs.push(await spawnTidings(role, env));
    }
    for (const port of metricsPorts) {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      for (const n of exported(await res.text())) scraped.add(n);
    }
    // The public ports keep the probes and nothing else of this.
    for (const p of procs) {
      expect((await fetch(p.http("/metrics"))).status).toBe(404);
      expect((await fetch(p.http("/readyz"))).status).toBe(200);
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await nats?.stop();
    scraped = new Set();
  });

  it("name only metrics a running gateway or presence replica exports", () => {
    const named = new Set(
      [...dashboardExprs(), ...alertExprs()].flatMap((e) => e.match(METRIC) ?? []),
    );
    expect(named.size).toBeGreaterThan(15);
    expect([...named].filter((n) => !scraped.has(n)).sort()).toEqual([]);
  });

  it("alert on what the issue lists: NATS, publish errors, slow consumers, presence lag, webhooks, draining", () => {
    const text = alertExprs().join("\n");
    for (const m of [
      "tidings_nats_connected",
      "tidings_publish_errors_total",
      "tidings_slow_consumer_closes_total",
      "tidings_presence_report_lag_seconds",
      "tidings_webhook_queue_depth",
      "tidings_draining",
    ])
      expect(text).toContain(m);
  });
});
