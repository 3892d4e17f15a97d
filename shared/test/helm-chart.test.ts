/**
 * Offline checks of the Helm chart (deploy/tidings). No helm binary is
 * available to CI, so nothing is rendered: instead the values parse, every
 * `.Values` path a template reads exists, every env var a template sets is in
 * the config schema, template blocks are balanced, and the defaults agree
 * with the plain manifests in k8s/ (which are validated by k8s-manifests.test.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { schema } from "../src/config/schema.js";
import {
  CHART_DIR,
  type Container,
  envValue,
  find,
  k8sObjects,
  listFiles,
  podSpec,
  readYaml,
} from "./deploy-files.js";

type Tree = { [key: string]: unknown };

const values = readYaml(join(CHART_DIR, "values.yaml")) as Tree;
const sources = [
  ...listFiles(join(CHART_DIR, "templates")).map((f) => `templates/${f}`),
  ...listFiles(join(CHART_DIR, "files")).map((f) => `files/${f}`),
].map((path) => ({ path, text: readFileSync(join(CHART_DIR, path), "utf8") }));
const known = new Set<string>(Object.values(schema).map((f) => f.env));

function lookup(tree: unknown, path: string[]): { found: boolean; value: unknown } {
  let node = tree;
  for (const key of path) {
    if (node === null || typeof node !== "object" || !(key in (node as Tree)))
      return { found: false, value: undefined };
    node = (node as Tree)[key];
  }
  return { found: true, value: node };
}

function value<T>(path: string): T {
  const r = lookup(values, path.split("."));
  if (!r.found) throw new Error(`values.yaml has no ${path}`);
  return r.value as T;
}

describe("deploy/tidings chart", () => {
  it("Chart.yaml is a v2 application chart", () => {
    const chart = readYaml(join(CHART_DIR, "Chart.yaml")) as Tree;
    expect(chart).toMatchObject({ apiVersion: "v2", name: "tidings", type: "application" });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  // A typo in `.Values.x.y` renders as empty, not as an error, in Helm.
  it("every values path a template reads exists in values.yaml", () => {
    const missing: string[] = [];
    for (const { path, text } of sources) {
      // Aliases such as `$g := .Values.gateway` or `$v := .ctx.Values`.
      const aliases = new Map<string, string[]>();
      for (const m of text.matchAll(/\$(\w+)\s*:=\s*\.(?:ctx\.)?Values((?:\.\w+)*)/g)) {
        aliases.set(m[1]!, m[2]!.split(".").filter(Boolean));
      }
      const uses: string[][] = [];
      for (const m of text.matchAll(/\.Values((?:\.\w+)+)/g))
        uses.push(m[1]!.split(".").filter(Boolean));
      for (const m of text.matchAll(/\$(\w+)((?:\.\w+)+)/g)) {
        const base = aliases.get(m[1]!);
        if (base) uses.push([...base, ...m[2]!.split(".").filter(Boolean)]);
      }
      for (const use of uses) {
        if (!lookup(values, use).found) missing.push(`${path}: .Values.${use.join(".")}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("every file a template renders exists under files/", () => {
    const files = new Set(sources.map((s) => s.path));
    for (const { text } of sources) {
      for (const m of text.matchAll(/"file"\s+"([^"]+)"/g))
        expect(files).toContain(`files/${m[1]}`);
    }
  });

  // Helm reports an unbalanced block with a line number only at render time.
  it.each(sources.map((s) => [s.path, s.text] as const))(
    "%s has balanced template blocks",
    (_path, text) => {
      const actions = [...text.matchAll(/\{\{-?\s*(\/\*[\s\S]*?\*\/|[^}]*?)\s*-?\}\}/g)].map(
        (m) => m[1]!,
      );
      expect(text.split("{{").length).toBe(text.split("}}").length);
      let depth = 0;
      for (const a of actions) {
        if (/^(if|with|range|define)\b/.test(a)) depth++;
        else if (/^end\b/.test(a)) depth--;
        expect(depth).toBeGreaterThanOrEqual(0);
      }
      expect(depth).toBe(0);
    },
  );

  // The app ignores (TIDINGS_* only warns about) names it does not know.
  it("every env var the templates set is in the config schema", () => {
    const names = new Set<string>();
    for (const { text } of sources) {
      for (const m of text.matchAll(/^\s*-\s+name:\s+([A-Z][A-Z0-9_]+)\s*$/gm)) names.add(m[1]!);
    }
    expect([...names].sort()).toEqual(
      expect.arrayContaining(["NATS_REPLICAS", "NATS_URL", "TIDINGS_APPS", "TIDINGS_ROLE"]),
    );
    for (const name of names) expect(known, name).toContain(name);
    for (const path of ["config.env", "gateway.env", "presence.env"]) {
      for (const name of Object.keys(value<Tree>(path))) expect(known, name).toContain(name);
    }
  });

  it("defaults: R3 NATS, a drain that fits in the grace period, presence x2", () => {
    expect(value<number>("nats.replicas")).toBe(3);
    expect(value<number>("gateway.terminationGracePeriodSeconds")).toBeGreaterThan(
      value<number>("gateway.preStopSleepSeconds") + value<number>("gateway.drainSeconds"),
    );
    expect(value<number>("gateway.port")).toBe(schema.port.default);
    expect(value<number>("presence.replicas")).toBe(2);
    expect(value<string>("config.logLevel")).toBe(schema.logLevel.default);
    // The chart must not ship credentials; the dev app is opt-in.
    expect(value<string>("apps.json")).toBe("");
    expect(value<boolean>("apps.allowDevApp")).toBe(false);
  });

  it("defaults agree with the plain manifests in k8s/", () => {
    const objects = k8sObjects();
    const gw = podSpec(find(objects, "Deployment", "tidings-gateway"));
    const gc = gw.containers[0]! as Container & {
      resources: unknown;
      ports: { containerPort: number }[];
    };
    expect(gw.terminationGracePeriodSeconds).toBe(value("gateway.terminationGracePeriodSeconds"));
    expect(envValue(gc, "TIDINGS_DRAIN_SECONDS")).toBe(String(value("gateway.drainSeconds")));
    expect(envValue(gc, "PORT")).toBe(String(value("gateway.port")));
    expect(envValue(gc, "NATS_URL")).toBe(value("nats.url"));
    expect(envValue(gc, "NATS_REPLICAS")).toBe(String(value("nats.replicas")));
    expect(envValue(gc, "LOG_LEVEL")).toBe(value("config.logLevel"));
    expect(gc.ports[0]!.containerPort).toBe(value("gateway.port"));
    expect(gc.resources).toEqual(value("gateway.resources"));
    expect(gc.securityContext).toEqual(value("containerSecurityContext"));
    expect(gw.securityContext).toEqual(value("podSecurityContext"));

    const svc = find(objects, "Service", "tidings-gateway").spec as {
      type: string;
      ports: { port: number }[];
    };
    expect(svc.type).toBe(value("gateway.service.type"));
    expect(svc.ports[0]!.port).toBe(value("gateway.service.port"));

    const hpa = find(objects, "HorizontalPodAutoscaler", "tidings-gateway").spec as Tree;
    expect(value("gateway.autoscaling.enabled")).toBe(true);
    expect(hpa.minReplicas).toBe(value("gateway.autoscaling.minReplicas"));
    expect(hpa.maxReplicas).toBe(value("gateway.autoscaling.maxReplicas"));
    expect(JSON.stringify(hpa.metrics)).toContain(
      `"averageUtilization":${value("gateway.autoscaling.targetCPUUtilizationPercentage")}`,
    );
    const gwPdb = find(objects, "PodDisruptionBudget", "tidings-gateway").spec as Tree;
    expect(gwPdb.maxUnavailable).toBe(value("gateway.pdb.maxUnavailable"));

    const pr = find(objects, "Deployment", "tidings-presence");
    expect((pr.spec as Tree).replicas).toBe(value("presence.replicas"));
    const pc = podSpec(pr).containers[0]! as Container & { resources: unknown };
    expect(pc.resources).toEqual(value("presence.resources"));
    expect(podSpec(pr).terminationGracePeriodSeconds).toBe(
      value("presence.terminationGracePeriodSeconds"),
    );
    const prPdb = find(objects, "PodDisruptionBudget", "tidings-presence").spec as Tree;
    expect(prPdb.minAvailable).toBe(value("presence.pdb.minAvailable"));
  });
});
