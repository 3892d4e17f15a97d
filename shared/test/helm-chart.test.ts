/**
 * Offline checks of the Helm chart (deploy/tidings). No helm binary is
 * available to CI, so nothing is rendered: instead the values parse, every
 * `.Values` path a template reads exists, every env var a template sets is in
 * the config schema, template blocks are balanced, and the defaults agree
 * with the plain manifests in k8s/ (which are validated by k8s-manifests.test.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { schema } from "../src/config/schema.js";
import { at } from "./defined.js";
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

const valuesSchema = JSON.parse(readFileSync(join(CHART_DIR, "values.schema.json"), "utf8"));
const validateValues = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(valuesSchema);

/** values.yaml with `path` set to `v`, as `--set path=v` would make it. */
function withValue(path: string, v: unknown): Tree {
  const copy = structuredClone(values);
  const keys = path.split(".");
  let node = copy;
  for (const k of keys.slice(0, -1)) {
    if (node[k] === undefined) node[k] = {};
    node = node[k] as Tree;
  }
  node[at(keys, -1)] = v;
  return copy;
}

function file(path: string): string {
  return readFileSync(join(CHART_DIR, path), "utf8");
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
        aliases.set(at(m, 1), at(m, 2).split(".").filter(Boolean));
      }
      const uses: string[][] = [];
      for (const m of text.matchAll(/\.Values((?:\.\w+)+)/g))
        uses.push(at(m, 1).split(".").filter(Boolean));
      for (const m of text.matchAll(/\$(\w+)((?:\.\w+)+)/g)) {
        const base = aliases.get(at(m, 1));
        if (base) uses.push([...base, ...at(m, 2).split(".").filter(Boolean)]);
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
      const actions = [...text.matchAll(/\{\{-?\s*(\/\*[\s\S]*?\*\/|[^}]*?)\s*-?\}\}/g)].map((m) =>
        at(m, 1),
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
      for (const m of text.matchAll(/^\s*-\s+name:\s+([A-Z][A-Z0-9_]+)\s*$/gm)) names.add(at(m, 1));
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
    const gc = at(gw.containers, 0, "a gateway container") as Container & {
      resources: unknown;
      ports: { containerPort: number }[];
    };
    expect(gw.terminationGracePeriodSeconds).toBe(value("gateway.terminationGracePeriodSeconds"));
    expect(envValue(gc, "TIDINGS_DRAIN_SECONDS")).toBe(String(value("gateway.drainSeconds")));
    expect(envValue(gc, "PORT")).toBe(String(value("gateway.port")));
    // k8s/ runs its own NATS as Service "nats"; the chart's bundled one is named by its release.
    expect(envValue(gc, "NATS_URL")).toBe(
      `nats://${find(objects, "Service", "nats").metadata.name}:4222`,
    );
    expect(value("nats.url")).toBe("");
    expect(value("nats.enabled")).toBe(true);
    expect(envValue(gc, "NATS_REPLICAS")).toBe(String(value("nats.replicas")));
    expect(envValue(gc, "LOG_LEVEL")).toBe(value("config.logLevel"));
    expect(at(gc.ports, 0).containerPort).toBe(value("gateway.port"));
    // /metrics and the console on the internal port, in both renderings.
    expect(envValue(gc, "TIDINGS_METRICS_PORT")).toBe(String(value("metrics.port")));
    expect(gc.ports.map((p) => p.containerPort)).toContain(value("metrics.port"));
    expect(gc.resources).toEqual(value("gateway.resources"));
    expect(gc.securityContext).toEqual(value("containerSecurityContext"));
    expect(gw.securityContext).toEqual(value("podSecurityContext"));

    const svc = find(objects, "Service", "tidings-gateway").spec as {
      type: string;
      ports: { port: number }[];
    };
    expect(svc.type).toBe(value("gateway.service.type"));
    expect(at(svc.ports, 0).port).toBe(value("gateway.service.port"));

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
    const pc = at(podSpec(pr).containers, 0, "a presence container") as Container & {
      resources: unknown;
    };
    expect(pc.resources).toEqual(value("presence.resources"));
    expect(envValue(pc, "TIDINGS_METRICS_PORT")).toBe(String(value("metrics.port")));
    expect(podSpec(pr).terminationGracePeriodSeconds).toBe(
      value("presence.terminationGracePeriodSeconds"),
    );
    const prPdb = find(objects, "PodDisruptionBudget", "tidings-presence").spec as Tree;
    expect(prPdb.minAvailable).toBe(value("presence.pdb.minAvailable"));
  });

  it("values.schema.json accepts the defaults", () => {
    expect(validateValues(values), JSON.stringify(validateValues.errors)).toBe(true);
  });

  // Helm checks values against the schema on install and upgrade: wrong values fail there.
  it.each([
    ["gateway.port", 70000, "/gateway/port"],
    ["gateway.replica", 3, "/gateway"],
    ["gateway.autoscaling.connectionsPerPod", "lots", "/gateway/autoscaling/connectionsPerPod"],
    ["config.logLevel", "loud", "/config/logLevel"],
    ["nats.replicas", 7, "/nats/replicas"],
    ["nats.url", "http://nats:4222", "/nats/url"],
    ["gateway.service.type", "Ingress", "/gateway/service/type"],
    ["config.env", { "lower-case": "1" }, "/config/env"],
    ["imag", {}, ""],
  ] as const)("values.schema.json rejects %s=%j", (path, bad, at) => {
    expect(validateValues(withValue(path, bad))).toBe(false);
    expect(validateValues.errors?.map((e) => e.instancePath)).toContain(at);
  });

  it("installs the official NATS chart when nats.enabled: 3 JetStream servers, fsync always", () => {
    const chart = readYaml(join(CHART_DIR, "Chart.yaml")) as {
      dependencies: { name: string; condition: string; repository: string }[];
    };
    expect(chart.dependencies).toEqual([
      expect.objectContaining({ name: "nats", condition: "nats.enabled" }),
    ]);
    expect(value("nats.config.cluster")).toEqual({ enabled: true, replicas: 3 });
    expect(value("nats.config.jetstream.enabled")).toBe(true);
    expect(value("nats.config.jetstream.fileStore.enabled")).toBe(true);
    expect(value("nats.config.jetstream.merge")).toEqual({ sync_interval: "always" });
    // NATS_URL falls back to the bundled chart's Service, and fails without either.
    const helpers = file("templates/_helpers.tpl");
    expect(helpers).toContain('include "tidings.natsUrl" .ctx');
    expect(helpers).toMatch(/printf "nats:\/\/%s:4222" \$svc/);
    expect(helpers).toMatch(/fail "set nats.url/);
  });

  it("pods run under a ServiceAccount without an API token", () => {
    expect(value("serviceAccount.create")).toBe(true);
    expect(file("files/serviceaccount.yaml")).toMatch(/^automountServiceAccountToken: false$/m);
    for (const role of ["gateway", "presence"]) {
      const body = file(`files/${role}/deployment.yaml`);
      expect(body).toMatch(/serviceAccountName: \{\{ include "tidings.serviceAccountName" \. \}\}/);
      expect(body).toMatch(/^\s+automountServiceAccountToken: false$/m);
    }
  });

  it("NetworkPolicies for both roles are on by default and open only the role's ports", () => {
    expect(value("networkPolicy.enabled")).toBe(true);
    for (const role of ["gateway", "presence"]) {
      const body = file(`files/${role}/networkpolicy.yaml`);
      expect(body).toContain("kind: NetworkPolicy");
      expect(body).toContain("policyTypes: [Ingress]");
      expect(body).toMatch(/- port: http\n/);
      expect(body).toMatch(/- port: metrics\n[\s\S]*networkPolicy\.metricsFrom/);
      expect(body).toContain(`"component" "${role}"`);
    }
  });

  it("Ingress and HTTPRoute are optional and keep WebSockets open", () => {
    expect(value("gateway.ingress.enabled")).toBe(false);
    expect(value("gateway.httpRoute.enabled")).toBe(false);
    const annotations = value<Record<string, string>>("gateway.ingress.annotations");
    for (const k of ["proxy-read-timeout", "proxy-send-timeout"])
      expect(Number(annotations[`nginx.ingress.kubernetes.io/${k}`])).toBeGreaterThanOrEqual(3600);
    expect(value("gateway.httpRoute.timeouts")).toEqual({ request: "0s", backendRequest: "0s" });
    expect(file("files/gateway/ingress.yaml")).toContain("kind: Ingress");
    expect(file("files/gateway/httproute.yaml")).toContain("kind: HTTPRoute");
    expect(file("files/gateway/httproute.yaml")).toMatch(/required "gateway.httpRoute.parentRefs/);
  });

  it("the HPA can scale on connections per pod as well as CPU", () => {
    expect(value("gateway.autoscaling.connectionsPerPod")).toBe("");
    expect(value("gateway.autoscaling.connectionsMetric")).toBe("tidings_connections");
    const hpa = file("files/gateway/hpa.yaml");
    expect(hpa).toMatch(/type: Resource[\s\S]*name: cpu/);
    expect(hpa).toMatch(
      /if \$a\.connectionsPerPod[\s\S]*type: Pods[\s\S]*name: \{\{ \$a\.connectionsMetric \}\}[\s\S]*type: AverageValue/,
    );
    expect(validateValues(withValue("gateway.autoscaling.connectionsPerPod", "5000"))).toBe(true);
  });
});
