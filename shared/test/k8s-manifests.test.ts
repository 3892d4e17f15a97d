/**
 * Offline checks of k8s/: every object validates against the Kubernetes
 * schemas (kubernetes-models; note it does not flag unknown fields), the
 * objects reference each other consistently, and the Tidings containers only
 * set config variables the schema knows. No cluster, kubectl or helm needed.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { schema } from "../src/config/schema.js";
import { at, expectDefined } from "./defined.js";
import {
  envValue,
  find,
  K8S_DIR,
  type K8sObject,
  k8sObjects,
  listFiles,
  podSpec,
  ROOT,
  readYaml,
} from "./deploy-files.js";
import { natsServerBinaries } from "./nats-harness.js";

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
const hasKubectl = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;
const KUSTOMIZE = process.env.KUSTOMIZE_BIN ?? findKustomize();
const objects = k8sObjects();
const workloads = objects.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet");
const podLabels = (w: K8sObject) =>
  (w.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata
    .labels;
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
const tidingsContainers = workloads.flatMap((w) =>
  podSpec(w).containers.filter((c) => c.image.startsWith("tidings:")),
);

describe("k8s/ manifests", () => {
  it("kustomization lists every manifest in the folder exactly once", () => {
    const listed = (readYaml(join(K8S_DIR, "kustomization.yaml")) as { resources: string[] })
      .resources;
    const onDisk = listFiles(K8S_DIR).filter(
      (f) => f.endsWith(".yaml") && f !== "kustomization.yaml",
    );
    expect([...listed].sort()).toEqual(onDisk.sort());
    expect(new Set(listed).size).toBe(listed.length);
  });

  // The schema check is the closest thing to `kubectl apply --dry-run` offline.
  it.each(objects.map((o) => [`${o.kind} ${o.metadata.name}`, o] as const))(
    "%s validates against the Kubernetes schema",
    (_name, o) => {
      const Model = expectDefined(
        MODELS[`${o.apiVersion}/${o.kind}`],
        `a model for ${o.apiVersion} ${o.kind}`,
      );
      const { file: _file, ...data } = o;
      expect(() => new Model(data as never).validate()).not.toThrow();
    },
  );

  it("names are unique per kind and namespace-less", () => {
    const keys = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const o of objects) expect(o.metadata).not.toHaveProperty("namespace");
  });

  // A selector that matches nothing deploys cleanly and then serves nothing.
  it("workload selectors, Services, PDBs and the HPA all point at real pods", () => {
    for (const w of workloads) {
      const sel = (w.spec as { selector: { matchLabels: Record<string, string> } }).selector;
      expect(matches(sel.matchLabels, podLabels(w)), w.metadata.name).toBe(true);
    }
    for (const svc of objects.filter((o) => o.kind === "Service")) {
      const sel = (svc.spec as { selector: Record<string, string> }).selector;
      expect(
        workloads.some((w) => matches(sel, podLabels(w))),
        svc.metadata.name,
      ).toBe(true);
    }
    for (const pdb of objects.filter((o) => o.kind === "PodDisruptionBudget")) {
      const sel = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector;
      expect(
        workloads.some((w) => matches(sel.matchLabels, podLabels(w))),
        pdb.metadata.name,
      ).toBe(true);
    }
    const hpa = find(objects, "HorizontalPodAutoscaler", "tidings-gateway");
    const target = (hpa.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef;
    expect(find(objects, target.kind, target.name)).toBeDefined();
    // The HPA owns the count; a fixed replicas field would fight it on every apply.
    expect(find(objects, "Deployment", "tidings-gateway").spec).not.toHaveProperty("replicas");
  });

  it("pods run under a ServiceAccount without an API token", () => {
    const sa = find(objects, "ServiceAccount", "tidings");
    expect(sa.automountServiceAccountToken).toBe(false);
    for (const w of workloads.filter((w) => w.metadata.name.startsWith("tidings-"))) {
      const spec = podSpec(w) as ReturnType<typeof podSpec> & {
        serviceAccountName?: string;
        automountServiceAccountToken?: boolean;
      };
      expect(spec.serviceAccountName, w.metadata.name).toBe("tidings");
      expect(spec.automountServiceAccountToken, w.metadata.name).toBe(false);
    }
  });

  // A policy whose selector or named port matches nothing blocks nothing, silently.
  it("NetworkPolicies select real pods and name ports those pods expose", () => {
    const policies = objects.filter((o) => o.kind === "NetworkPolicy");
    expect(policies.map((p) => p.metadata.name).sort()).toEqual([
      "nats",
      "tidings-gateway",
      "tidings-presence",
    ]);
    for (const p of policies) {
      const spec = p.spec as {
        podSelector: { matchLabels: Record<string, string> };
        ingress: { ports: { port: string }[] }[];
      };
      const selected = workloads.filter((w) => matches(spec.podSelector.matchLabels, podLabels(w)));
      expect(selected.length, p.metadata.name).toBe(1);
      const ports = podSpec(at(selected, 0)).containers.flatMap(
        (c) => (c as unknown as { ports?: { name: string }[] }).ports ?? [],
      );
      for (const rule of spec.ingress)
        for (const port of rule.ports)
          expect(
            ports.map((x) => x.name),
            p.metadata.name,
          ).toContain(port.port);
    }
  });

  it("Secrets and ConfigMaps referenced by pods exist", () => {
    for (const w of workloads) {
      const spec = podSpec(w);
      for (const v of spec.volumes ?? []) {
        if (v.configMap) find(objects, "ConfigMap", v.configMap.name);
        if (v.secret) find(objects, "Secret", v.secret.secretName);
      }
      for (const c of spec.containers) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (!ref) continue;
          const secret = find(objects, "Secret", ref.name) as K8sObject & {
            stringData?: Record<string, string>;
          };
          expect(secret.stringData, `${ref.name} key ${ref.key}`).toHaveProperty(ref.key);
        }
      }
    }
  });

  // An unknown name is silently ignored by the app (TIDINGS_* only warns).
  it("Tidings containers set only config variables the schema defines", () => {
    const known = new Set<string>(Object.values(schema).map((f) => f.env));
    expect(tidingsContainers.length).toBeGreaterThanOrEqual(2);
    for (const c of tidingsContainers) {
      for (const e of c.env ?? []) expect(known, `${c.name}: ${e.name}`).toContain(e.name);
    }
    const roles = tidingsContainers.map((c) => envValue(c, "TIDINGS_ROLE")).sort();
    expect(roles).toEqual(["gateway", "presence"]);
    for (const c of tidingsContainers) {
      expect(envValue(c, "NATS_REPLICAS"), c.name).toBe("3");
      expect(envValue(c, "NATS_URL"), c.name).toBe("nats://nats:4222");
    }
  });

  it("the gateway probes /readyz and /healthz and outlives its drain", () => {
    const spec = podSpec(find(objects, "Deployment", "tidings-gateway"));
    const c = at(spec.containers, 0, "a gateway container") as unknown as {
      readinessProbe: { httpGet: { path: string } };
      livenessProbe: { httpGet: { path: string } };
      lifecycle: { preStop: { exec: { command: string[] } } };
    } & Parameters<typeof envValue>[0];
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    const [cmd, seconds] = c.lifecycle.preStop.exec.command;
    expect(cmd).toBe("sleep");
    const drain = Number(envValue(c, "TIDINGS_DRAIN_SECONDS"));
    expect(drain).toBeGreaterThan(0);
    expect(expectDefined(spec.terminationGracePeriodSeconds, "a grace period")).toBeGreaterThan(
      Number(seconds) + drain,
    );
  });

  it("the apps Secret placeholder cannot start the development app", () => {
    const secret = find(objects, "Secret", "tidings-apps") as K8sObject & {
      stringData: Record<string, string>;
    };
    const value = expectDefined(secret.stringData.TIDINGS_APPS, "TIDINGS_APPS in the Secret");
    // Empty would count as unset (development app); valid JSON would be live credentials.
    expect(value).not.toBe("");
    expect(() => JSON.parse(value)).toThrow();
  });

  it("NATS runs 3 JetStream servers with fsync on every write", () => {
    const sts = find(objects, "StatefulSet", "nats");
    expect((sts.spec as { replicas: number }).replicas).toBe(3);
    const conf = natsConf();
    expect(conf).toMatch(/^\s*sync_interval:\s*always\s*$/m);
    for (const i of [0, 1, 2]) expect(conf).toContain(`nats://nats-${i}.nats-headless:6222`);
    const pdb = find(objects, "PodDisruptionBudget", "nats");
    expect((pdb.spec as { maxUnavailable: number }).maxUnavailable).toBe(1);
  });

  // What `kubectl apply -k` would send, checked against the same schemas.
  it.skipIf(!KUSTOMIZE)(
    "kustomize builds the folder into valid objects with the pinned image (run bash .ci/kustomize.sh to enable)",
    () => {
      const r = spawnSync(expectDefined(KUSTOMIZE, "a kustomize binary"), ["build", K8S_DIR], {
        encoding: "utf8",
      });
      expect(r.status, r.stderr).toBe(0);
      const built = parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
      expect(built.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
        objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(),
      );
      for (const o of built) {
        const Model = expectDefined(
          MODELS[`${o.apiVersion}/${o.kind}`],
          `a model for ${o.apiVersion} ${o.kind}`,
        );
        expect(
          () => new Model(o as never).validate(),
          `${o.kind} ${o.metadata.name}`,
        ).not.toThrow();
      }
      const images = built
        .filter((o) => o.kind === "Deployment")
        .flatMap((o) => podSpec(o as K8sObject).containers.map((c) => c.image));
      expect(images).toEqual(["tidings:0.1.0", "tidings:0.1.0"]);
    },
  );

  it.skipIf(!hasKubectl)("kubectl kustomize builds the folder", () => {
    const r = spawnSync("kubectl", ["kustomize", K8S_DIR], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/^kind: /gm)?.length).toBe(objects.length);
  });

  // The local server is 2.9, which refuses `sync_interval` (2.10+): check the
  // rest of the file with it and `sync_interval` by the assertion above.
  it.skipIf(!existsSync(NATS_SERVER))("nats.conf parses with the local nats-server", () => {
    expectParses(NATS_SERVER, natsConf().replace(/^\s*sync_interval:.*$/m, ""));
  });

  // The file as shipped, `sync_interval` included, on the kind of server it is for.
  const newer = natsServerBinaries()[1];
  it.skipIf(!newer?.bin)(`nats.conf parses as shipped with ${newer?.label}`, () => {
    expectParses(newer?.bin ?? "", natsConf());
  });
});

function expectParses(bin: string, conf: string): void {
  const dir = mkdtempSync(join(tmpdir(), "tidings-nats-conf-"));
  try {
    const path = join(dir, "nats.conf");
    writeFileSync(path, conf);
    const r = spawnSync(bin, ["-t", "-c", path], {
      env: { ...process.env, POD_NAME: "nats-0" },
      encoding: "utf8",
    });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The newest kustomize .ci/kustomize.sh unpacked under .tmp/kustomize/, if any. */
function findKustomize(): string | undefined {
  const dir = join(ROOT, ".tmp", "kustomize");
  if (!existsSync(dir)) return undefined;
  const versions = readdirSync(dir).sort();
  for (const v of versions.reverse()) {
    const bin = join(dir, v, "usr", "bin", "kustomize");
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

function natsConf(): string {
  const cm = find(objects, "ConfigMap", "nats-config") as K8sObject & {
    data: Record<string, string>;
  };
  return expectDefined(cm.data["nats.conf"], "nats.conf in ConfigMap nats-config");
}
