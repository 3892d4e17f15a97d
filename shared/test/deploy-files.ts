/** Readers for the deployment files (k8s/ manifests, deploy/tidings chart) used by their tests. */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const K8S_DIR = join(ROOT, "k8s");
export const CHART_DIR = join(ROOT, "deploy", "tidings");

/** A Kubernetes object as parsed from YAML, with the file it came from. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [field: string]: unknown;
  file: string;
}

export function readYaml(path: string): unknown {
  return parse(readFileSync(path, "utf8"));
}

/** Every object in a multi-document YAML file; parse errors throw. */
export function readObjects(path: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(path, "utf8"));
  const out: K8sObject[] = [];
  for (const doc of docs) {
    const [error] = doc.errors;
    if (error) throw new Error(`${path}: ${error.message}`);
    const value = doc.toJS() as Omit<K8sObject, "file"> | null;
    if (value !== null) out.push({ ...value, file: path } as K8sObject);
  }
  return out;
}

/** The objects `k8s/kustomization.yaml` lists, in order. */
export function k8sObjects(): K8sObject[] {
  const kustomization = readYaml(join(K8S_DIR, "kustomization.yaml")) as { resources: string[] };
  return kustomization.resources.flatMap((r) => readObjects(join(K8S_DIR, r)));
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
}

/** Files under `dir`, recursively, relative paths. */
export function listFiles(dir: string, prefix = ""): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    return statSync(full).isDirectory() ? listFiles(full, rel) : [rel];
  });
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

export interface Container {
  name: string;
  image: string;
  env?: EnvVar[];
  [field: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
  [field: string]: unknown;
}

export function podSpec(workload: K8sObject): PodSpec {
  const spec = workload.spec as { template: { spec: PodSpec } };
  return spec.template.spec;
}

export function envValue(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}
