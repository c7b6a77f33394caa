/**
 * The Helm chart (deploy/helm/wirescript), the Dockerfile and the code must
 * agree. Run: node --test test/deploy/helm-chart.test.ts
 *
 * - Static checks (no helm): Chart.yaml and values.yaml parse; every value is
 *   documented and used; every `.Values.x.y` a template reads exists; every
 *   env variable a template names is one the code reads; the Dockerfile's
 *   entrypoint, command and build steps match the repository (its manifests
 *   script is run on the checkout: every workspace manifest and every native
 *   addon input is collected); netcap-exec's file capabilities, the
 *   capabilities it raises and the ones the capture values add agree.
 * - Rendered with a real helm (found or fetched: see helm.ts): lint, the
 *   objects for the default values and for overrides (replicas, external
 *   NATS, HPA, Prometheus, the capture DaemonSet and its pcap ring), the
 *   rendered env loaded by the services' own config loaders, and the rendered
 *   NATS config + runner env run for real (nats-server and the script-runner
 *   process), and the capture env too: the capture process started the way
 *   the pod starts it (netcap-exec compiled from deploy/image with the
 *   Dockerfile's flags and capabilities, UID 1000, the container's bounding
 *   set and no_new_privs) captures an HTTP call on loopback.
 * - hub and config-sync: their Deployments (one replica, Recreate), env
 *   loaded by their own config loaders and equal to the code defaults, their
 *   own ServiceAccounts and RBAC, checked by an RBAC evaluator against the
 *   requests the services make; the scripting ConfigMap (kept, never
 *   overwritten: rendered through `lookup` against a test API server) and
 *   Secret; then both run for real with the rendered env (local nats-server,
 *   the test Kubernetes API server from @wirescript/testing): /readyz 200,
 *   pod events / the script set in KV, every API request allowed by the
 *   rendered RBAC and every granted right used, SIGTERM exits 0.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, link, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { loadConfig, parseDuration, type AnyVarSpec, type Schema } from '@wirescript/config';
import { connectNats, drainAndClose, openKv } from '@wirescript/nats';
import {
  Item, PODS_WILDCARD, PodEvent, ReplicaStatus, SCRIPTS_KV_BUCKET, SCRIPTS_KV_KEY, ScriptSet, decodeMessage, itemsSubject, statusSubject,
} from '@wirescript/proto';
import { findNatsServer, freePort, putScriptSet, startKubeApiServer, startNatsServer, type KubeApiServer, type KubeObject } from '@wirescript/testing';
import { loadCaptureConfig } from '../../services/capture/src/config.ts';
import { configSyncConfig } from '../../services/config-sync/src/config.ts';
import {
  ACTIVE_SCRIPTS_KEY, DEFAULT_CONFIGMAP_NAME, DEFAULT_SECRET_NAME, ENV_KEY, SCRIPTS_KEY, parseScriptingEnv, parseStoredScripts, secretValue,
} from '../../services/config-sync/src/format.ts';
import { hubConfig } from '../../services/hub/src/config.ts';
import { podWatchPlan } from '../../services/hub/src/hub.ts';
import { CHART_DIR, REPO_ROOT, ensureHelm, helmLint, helmTemplate, type RenderOptions } from './helm.ts';

// ---------------------------------------------------------------------------
// What the code reads

type K8s = Record<string, any>;

function isVarSpec(v: unknown): v is AnyVarSpec {
  return typeof v === 'object' && v !== null && typeof (v as AnyVarSpec).name === 'string' && typeof (v as AnyVarSpec).parse === 'function';
}

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && Object.keys(v).length > 0 && Object.values(v).every(isVarSpec);
}

/** Each service's config schema (merged exports of services/<name>/src/config.ts), keyed by the CLI command that runs it. */
async function serviceSchemas(): Promise<Map<string, Schema>> {
  const out = new Map<string, Schema>();
  const servicesDir = path.join(REPO_ROOT, 'services');
  for (const name of readdirSync(servicesDir)) {
    const file = path.join(servicesDir, name, 'src', 'config.ts');
    if (!existsSync(file)) continue;
    const mod = (await import(file)) as Record<string, unknown>;
    const merged: Record<string, AnyVarSpec> = {};
    for (const v of Object.values(mod)) if (isSchema(v)) Object.assign(merged, v);
    assert.ok(Object.keys(merged).length > 0, `${path.relative(REPO_ROOT, file)} exports no config schema`);
    out.set(name, merged);
  }
  return out;
}

function varNames(schema: Schema): Set<string> {
  return new Set(Object.values(schema).map((s) => s.name));
}

const schemas = await serviceSchemas();
const ALL_VAR_NAMES = new Set([...schemas.values()].flatMap((s) => [...varNames(s)]));

// ---------------------------------------------------------------------------
// Chart files

const TEMPLATES_DIR = path.join(CHART_DIR, 'templates');
const templateFiles = readdirSync(TEMPLATES_DIR).filter((f) => /\.(ya?ml|tpl|txt)$/.test(f));
const templates = new Map(templateFiles.map((f) => [f, readFileSync(path.join(TEMPLATES_DIR, f), 'utf8')]));
const valuesText = readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8');
const values = YAML.parse(valuesText) as K8s;

function get(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const k of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function hasPath(obj: unknown, dotted: string): boolean {
  let cur: unknown = obj;
  for (const k of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return false;
    cur = (cur as Record<string, unknown>)[k];
  }
  return true;
}

/**
 * Every `.Values.a.b` a template reads, with `$x := .Values.a` (and
 * `$y := $x.b`) aliases resolved.
 */
function referencedValuePaths(): Map<string, string[]> {
  const refs = new Map<string, string[]>();
  const add = (p: string, file: string) => refs.set(p, [...(refs.get(p) ?? []), file]);
  for (const [file, text] of templates) {
    const aliases = new Map<string, string>();
    for (const m of text.matchAll(/\$(\w+)\s*:?=\s*(?:\$\.|\.)Values((?:\.\w+)+)/g)) aliases.set(m[1], m[2].slice(1));
    let grew = true;
    while (grew) {
      grew = false;
      for (const m of text.matchAll(/\$(\w+)\s*:?=\s*\$(\w+)((?:\.\w+)+)/g)) {
        const base = aliases.get(m[2]);
        if (base !== undefined && !aliases.has(m[1])) {
          aliases.set(m[1], base + m[3]);
          grew = true;
        }
      }
    }
    for (const m of text.matchAll(/(?:\$\.|[\s(])\.Values((?:\.\w+)+)/g)) add(m[1].slice(1), file);
    for (const m of text.matchAll(/\$(\w+)((?:\.\w+)+)/g)) {
      const base = aliases.get(m[1]);
      if (base !== undefined) add(base + m[2], file);
    }
    for (const base of aliases.values()) add(base, file);
  }
  return refs;
}

interface ValueLeaf {
  path: string;
  documented: boolean;
}

/** Every key of values.yaml, whether a comment documents it; subtrees of "(passed through)" keys are not entered. */
function valueKeys(): ValueLeaf[] {
  const doc = YAML.parseDocument(valuesText);
  const out: ValueLeaf[] = [];
  const walk = (node: unknown, prefix: string) => {
    if (!YAML.isMap(node)) return;
    node.items.forEach((pair, i) => {
      const key = YAML.isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const comment = (YAML.isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? (i === 0 ? node.commentBefore : undefined) ?? '';
      const p = prefix + key;
      out.push({ path: p, documented: comment.trim() !== '' });
      if (!/\(passed through\)/.test(comment)) walk(pair.value, `${p}.`);
    });
  };
  walk(doc.contents, '');
  return out;
}

/** Values kept for services that have not landed yet (documented as such in values.yaml). */
const RESERVED_VALUES: string[] = [];

// ---------------------------------------------------------------------------
// Rendering helpers

async function render(opts: RenderOptions = {}): Promise<K8s[]> {
  const text = await helmTemplate(opts);
  const docs = YAML.parseAllDocuments(text);
  for (const d of docs) assert.equal(d.errors.length, 0, `rendered YAML does not parse: ${d.errors.map((e) => e.message).join('; ')}`);
  return docs.map((d) => d.toJS() as K8s).filter((o) => o !== null);
}

/** The one object of `kind` whose name ends with `suffix`. */
function only(objs: K8s[], kind: string, suffix = ''): K8s {
  const hits = objs.filter((o) => o.kind === kind && String(o.metadata?.name).endsWith(suffix));
  assert.equal(hits.length, 1, `expected one ${kind}${suffix ? ` named *${suffix}` : ''}, got ${hits.map((o) => o.metadata?.name).join(', ') || 'none'}`);
  return hits[0];
}

function kinds(objs: K8s[]): string[] {
  return objs.map((o) => o.kind).sort();
}

function container(workload: K8s, name?: string): K8s {
  const cs = workload.spec.template.spec.containers as K8s[];
  const c = name ? cs.find((x) => x.name === name) : cs[0];
  assert.ok(c, `container ${name ?? '#0'} in ${workload.metadata.name}`);
  return c;
}

function envMap(c: K8s): Map<string, K8s> {
  const m = new Map<string, K8s>();
  for (const e of c.env as K8s[]) {
    assert.ok(!m.has(e.name), `env ${e.name} set twice in container ${c.name}`);
    m.set(e.name, e);
  }
  return m;
}

/** The env a pod would see: literal values, downward-API fields filled from `pod`. */
function podEnv(c: K8s, pod: { name: string; nodeName: string }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of c.env as K8s[]) {
    if (typeof e.value === 'string') out[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') out[e.name] = pod.name;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') out[e.name] = pod.nodeName;
  }
  return out;
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** The wirescript containers of every workload, with the service each runs. */
function wirescriptContainers(objs: K8s[]): { workload: K8s; container: K8s; service: string }[] {
  const out = [];
  for (const w of objs.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind))) {
    for (const c of w.spec.template.spec.containers as K8s[]) {
      if (String(c.image).startsWith(`${values.image.repository}:`)) out.push({ workload: w, container: c, service: String(c.args?.[0]) });
    }
  }
  return out;
}

/** Services whose own loader checks more than their schema (rules across variables): the rendered env must pass it too. */
const SERVICE_LOADERS: Record<string, (env: Record<string, string | undefined>) => unknown> = {
  capture: loadCaptureConfig,
  hub: (env) => loadConfig(hubConfig, env), // what services/hub/src/main.ts runs
  'config-sync': (env) => loadConfig(configSyncConfig, env), // what services/config-sync/src/main.ts runs
};

/** The env variables every rendered wirescript container sets are the ones its service reads, and load. */
function assertEnvMatchesCode(objs: K8s[]): void {
  const wcs = wirescriptContainers(objs);
  assert.ok(wcs.length > 0, 'no wirescript container rendered');
  for (const { container: c, service } of wcs) {
    const schema = schemas.get(service);
    assert.ok(schema, `container ${c.name} runs "${service}", which has no services/${service}/src/config.ts`);
    const known = varNames(schema);
    for (const e of c.env as K8s[]) assert.ok(known.has(e.name), `${service}: env ${e.name} is not read by the service (not in its config schema)`);
    const env = podEnv(c, { name: 'pod-0', nodeName: 'node-a' });
    assert.doesNotThrow(() => loadConfig(schema, env), `${service}: the rendered env does not load`);
    const own = SERVICE_LOADERS[service];
    if (own) assert.doesNotThrow(() => own(env), `${service}: the rendered env does not load with the service's own config loader`);
  }
}

const RUNNER_ENV = [
  'NATS_URL', 'NODE_NAME', 'REPLICA_ID', 'LOG_LEVEL', 'HOOK_TIMEOUT', 'JOB_TIMEOUT', 'SCRIPT_MEMORY_LIMIT_MB', 'SCRIPT_STACK_LIMIT_KB',
  'DISPATCH_BATCH_SIZE', 'ITEM_QUEUE_CAPACITY', 'PACKET_QUEUE_CAPACITY', 'STATUS_INTERVAL', 'LOG_RATE_LIMIT', 'DRAIN_TIMEOUT',
];

/** What the capture DaemonSet sets with the default values. */
const CAPTURE_ENV = [
  'NATS_URL', 'NODE_NAME', 'REPLICA_ID', 'LOG_LEVEL', 'CAPTURE_INTERFACE', 'CAPTURE_BUFFER_MB', 'MAX_BODY_BYTES', 'DECODE_BODIES',
  'PAIR_TIMEOUT', 'MAX_FLOWS', 'STREAM_BUFFER_BYTES', 'TCP_IDLE_TIMEOUT', 'UDP_IDLE_TIMEOUT', 'PUBLISH_QUEUE_CAPACITY', 'PACKET_SUMMARIES',
  'PACKET_BATCH_SIZE', 'PACKET_BATCH_INTERVAL', 'STATUS_INTERVAL', 'HEALTH_PORT', 'DRAIN_TIMEOUT',
];

/**
 * Variables of the capture schema the DaemonSet leaves to the code, each for
 * a reason; any other variable of services/capture/src/config.ts must be
 * rendered (a new one fails the test until the chart maps it or it is listed
 * here).
 */
const CAPTURE_ENV_LEFT_OUT: Record<string, string> = {
  CAPTURE_FILTER: 'empty by default (everything); set from capture.config.filter',
  CAPTURE_PCAP: 'replaying a file is not what a DaemonSet does',
  REPLAY_SPEED: 'only with CAPTURE_PCAP',
  EXIT_AFTER_REPLAY: 'only with CAPTURE_PCAP',
  PCAP_RING_DIR: 'only with capture.pcapRing.enabled',
  PCAP_RING_MAX_MB: 'only with capture.pcapRing.enabled',
  PCAP_RING_MAX_FILES: 'only with capture.pcapRing.enabled',
  HEALTH_HOST: 'all interfaces (the default): the kubelet probes the node IP',
  PROMETHEUS_PORT: 'only with telemetry.prometheus.enabled',
  PROMETHEUS_HOST: 'all interfaces (the default), so Prometheus can scrape the node IP',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'only with telemetry.otlpEndpoint',
  OTEL_EXPORTER_OTLP_HEADERS: 'only with telemetry.otlpHeadersSecret',
  OTEL_TRACES_EXPORTER: 'only with telemetry.tracesExporter',
  OTEL_METRICS_EXPORTER: 'only with telemetry.metricsExporter',
  OTEL_METRIC_EXPORT_INTERVAL: 'only with telemetry.metricExportInterval',
  TRACE_SAMPLE_RATIO: 'only with telemetry.traceSampleRatio',
};

/** What the hub Deployment sets with the default values (NODE_NAME is not one: the hub's node is always "hub"). */
const HUB_ENV = [
  'NATS_URL', 'REPLICA_ID', 'LOG_LEVEL', 'HOOK_TIMEOUT', 'JOB_TIMEOUT', 'SCRIPT_MEMORY_LIMIT_MB', 'SCRIPT_STACK_LIMIT_KB', 'DISPATCH_BATCH_SIZE',
  'ACTION_MAX_IN_FLIGHT', 'ACTION_ACK_WAIT', 'ACTION_MAX_DELIVER', 'POD_WATCH', 'POD_WATCH_BACKOFF_MAX', 'POD_MAP', 'POD_EVENT_QUEUE_CAPACITY',
  'STATUS_INTERVAL', 'LOG_RATE_LIMIT', 'HEALTH_PORT', 'DRAIN_TIMEOUT',
];

/** What the config-sync Deployment sets with the default values. */
const CONFIG_SYNC_ENV = [
  'NATS_URL', 'NODE_NAME', 'REPLICA_ID', 'LOG_LEVEL', 'CONFIGMAP_NAME', 'CONFIGMAP_NAMESPACE', 'SECRET_NAME', 'MAX_SCRIPT_BYTES', 'SYNC_DEBOUNCE',
  'WATCH_BACKOFF_MIN', 'WATCH_BACKOFF_MAX', 'STATUS_INTERVAL', 'HEALTH_PORT', 'DRAIN_TIMEOUT',
];

/** Telemetry variables every service reads and the chart sets only when their values are. */
const TELEMETRY_LEFT_OUT: Record<string, string> = {
  PROMETHEUS_PORT: 'only with telemetry.prometheus.enabled',
  PROMETHEUS_HOST: 'all interfaces (the default), so Prometheus can scrape the pod IP',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'only with telemetry.otlpEndpoint',
  OTEL_EXPORTER_OTLP_HEADERS: 'only with telemetry.otlpHeadersSecret',
  OTEL_TRACES_EXPORTER: 'only with telemetry.tracesExporter',
  OTEL_METRICS_EXPORTER: 'only with telemetry.metricsExporter',
  OTEL_METRIC_EXPORT_INTERVAL: 'only with telemetry.metricExportInterval',
  TRACE_SAMPLE_RATIO: 'only with telemetry.traceSampleRatio',
};

/** Variables of the hub schema its Deployment leaves out by default, each for a reason (as CAPTURE_ENV_LEFT_OUT). */
const HUB_ENV_LEFT_OUT: Record<string, string> = {
  ...TELEMETRY_LEFT_OUT,
  POD_NAMESPACES: 'empty by default (every namespace); set from hub.podNamespaces',
  KUBECONFIG: 'in a pod the in-cluster service account is used',
  KUBERNETES_SERVICE_HOST: 'set by Kubernetes in every container (what POD_WATCH=auto detects)',
  KUBERNETES_SERVICE_PORT: 'set by Kubernetes in every container',
  HEALTH_HOST: 'all interfaces (the default): the kubelet probes the pod IP',
};

/** Variables of the config-sync schema its Deployment leaves out, each for a reason. */
const CONFIG_SYNC_ENV_LEFT_OUT: Record<string, string> = {
  ...TELEMETRY_LEFT_OUT,
  SCRIPTS_DIR: 'a local folder instead of Kubernetes: for one machine, not a cluster',
  SCRIPTING_ENV: 'only with SCRIPTS_DIR; in a cluster the env comes from the Secret',
  KUBECONFIG: 'in a pod the in-cluster service account is used',
  HEALTH_HOST: 'all interfaces (the default): the kubelet probes the pod IP',
};

/** Values equal to the code default are not asserted for these: the chart sets them to what the cluster gives. */
const INTENTIONALLY_DIFFERENT = new Set([
  'NATS_URL', 'NODE_NAME', 'REPLICA_ID',
  // The release namespace; the code's default is the pod's namespace in a cluster (the same), "default" elsewhere.
  'CONFIGMAP_NAMESPACE',
]);

/**
 * A service's rendered env against its code: every variable of its schema is
 * rendered or left out for a listed reason, nothing listed is rendered by
 * default, and every rendered value equals the code's default.
 */
function assertEnvIsCodeDefaults(service: string, c: K8s, leftOut: Record<string, string>, load: (env: Record<string, string | undefined>) => unknown): void {
  const schema = schemas.get(service)!;
  const env = envMap(c);
  for (const v of Object.values(schema)) {
    assert.ok(env.has(v.name) || Object.hasOwn(leftOut, v.name), `services/${service} reads ${v.name}, which the chart neither sets nor lists as left out`);
  }
  for (const name of Object.keys(leftOut)) {
    assert.ok(varNames(schema).has(name), `the left-out list of ${service} names ${name}, which it no longer reads`);
    assert.ok(!env.has(name), `${service}: ${name} set by default`);
  }
  const rendered = load(podEnv(c, { name: 'pod-0', nodeName: 'node-a' })) as K8s;
  const defaults = load({}) as K8s;
  for (const [key, v] of Object.entries(schema)) {
    if (!env.has(v.name) || INTENTIONALLY_DIFFERENT.has(v.name)) continue;
    assert.deepEqual(rendered[key], defaults[key], `values.yaml default for ${service} ${v.name} differs from the code's default`);
  }
}

// ---------------------------------------------------------------------------
// RBAC: what the API server's authorizer would decide

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding']);

interface ApiRequest {
  method: string;
  path: string;
  query: string;
}

/** The attributes RBAC decides on. */
interface RequestAttributes {
  verb: string;
  apiGroup: string;
  resource: string;
  /** "" for a cluster-wide request. */
  namespace: string;
  /** "" when the request names no object. */
  name: string;
}

/**
 * A request's attributes as kube-apiserver derives them (RequestInfoFactory):
 * GET on a collection is list, with watch=true watch, on an object get; a
 * list or watch with the field selector metadata.name=X is about object X
 * (which is what lets resourceNames restrict list and watch). Null for a
 * non-resource URL (/version, discovery: every client may read those).
 */
function requestAttributes(r: ApiRequest): RequestAttributes | null {
  const parts = r.path.split('/').filter(Boolean).map(decodeURIComponent);
  let apiGroup: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) [apiGroup, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length >= 4) [apiGroup, rest] = [parts[1], parts.slice(3)];
  else return null;
  let namespace = '';
  if (rest[0] === 'namespaces' && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)];
  const [resource, objectName = ''] = rest;
  const q = new URLSearchParams(r.query);
  const watch = ['true', '1'].includes(q.get('watch') ?? '');
  const verb = r.method === 'GET' || r.method === 'HEAD' ? (watch ? 'watch' : objectName ? 'get' : 'list')
    : r.method === 'POST' ? 'create' : r.method === 'PUT' ? 'update' : r.method === 'PATCH' ? 'patch'
    : r.method === 'DELETE' ? (objectName ? 'delete' : 'deletecollection') : r.method.toLowerCase();
  let name = objectName;
  if ((verb === 'list' || verb === 'watch') && !name) {
    for (const term of (q.get('fieldSelector') ?? '').split(',')) {
      const m = /^metadata\.name==?(.+)$/.exec(term.trim());
      if (m) name = m[1];
    }
  }
  return { verb, apiGroup, resource, namespace, name };
}

interface Grant {
  /** null: every namespace (a ClusterRoleBinding). */
  namespace: string | null;
  rule: K8s;
}

/** The rules the rendered objects grant a ServiceAccount, each with where it applies. */
function grantsOf(objs: K8s[], sa: { name: string; namespace: string }): Grant[] {
  const binds = (b: K8s) => ((b.subjects ?? []) as K8s[]).some((s) => s.kind === 'ServiceAccount' && s.name === sa.name && s.namespace === sa.namespace);
  const out: Grant[] = [];
  for (const b of objs.filter((o) => o.kind === 'ClusterRoleBinding' && binds(o))) {
    assert.equal(b.roleRef.kind, 'ClusterRole');
    const role = objs.find((o) => o.kind === 'ClusterRole' && o.metadata.name === b.roleRef.name);
    assert.ok(role, `ClusterRoleBinding ${b.metadata.name} refers to ClusterRole ${b.roleRef.name}, which the chart does not render`);
    for (const rule of role.rules as K8s[]) out.push({ namespace: null, rule });
  }
  for (const b of objs.filter((o) => o.kind === 'RoleBinding' && binds(o))) {
    const ns = b.metadata.namespace as string;
    const role = objs.find((o) => o.kind === b.roleRef.kind && o.metadata.name === b.roleRef.name && (b.roleRef.kind === 'ClusterRole' || o.metadata.namespace === ns));
    assert.ok(role, `RoleBinding ${ns}/${b.metadata.name} refers to ${b.roleRef.kind} ${b.roleRef.name}, which the chart does not render in ${ns}`);
    for (const rule of role.rules as K8s[]) out.push({ namespace: ns, rule });
  }
  return out;
}

function allows(grants: Grant[], a: RequestAttributes): boolean {
  const has = (list: unknown, v: string) => Array.isArray(list) && (list.includes(v) || list.includes('*'));
  return grants.some(({ namespace, rule }) =>
    (namespace === null || namespace === a.namespace)
    && has(rule.verbs, a.verb) && has(rule.apiGroups, a.apiGroup) && has(rule.resources, a.resource)
    && (!(rule.resourceNames as string[] | undefined)?.length || (a.name !== '' && (rule.resourceNames as string[]).includes(a.name))));
}

/** "resource verb" pairs the grants name. */
function grantedRights(grants: Grant[]): string[] {
  return [...new Set(grants.flatMap(({ rule }) => (rule.resources as string[]).flatMap((r) => (rule.verbs as string[]).map((v) => `${r} ${v}`))))].sort();
}

/**
 * Every API request a service made is allowed by the rendered RBAC for its
 * ServiceAccount, and every right granted was used: the chart grants exactly
 * what the code requests. Returns the "resource verb" pairs used.
 */
function assertRbacIsExactlyWhatIsRequested(objs: K8s[], sa: { name: string; namespace: string }, requests: readonly ApiRequest[]): string[] {
  const grants = grantsOf(objs, sa);
  const used = new Set<string>();
  for (const r of requests) {
    const a = requestAttributes(r);
    if (!a) continue;
    assert.ok(allows(grants, a), `${r.method} ${r.path}${r.query ? `?${r.query}` : ''} (${a.verb} ${a.resource}${a.name ? ` ${a.name}` : ''}${a.namespace ? ` in ${a.namespace}` : ''}) is not allowed by the chart's RBAC for ServiceAccount ${sa.namespace}/${sa.name}`);
    used.add(`${a.resource} ${a.verb}`);
  }
  assert.ok(used.size > 0, 'the service made no Kubernetes API request');
  assert.deepEqual(grantedRights(grants), [...used].sort(), `the RBAC of ${sa.name} grants rights the service does not use (or the reverse)`);
  return [...used].sort();
}

/** A Pod object for the test API server. */
function podObj(ns: string, name: string, ip: string): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: { nodeName: 'node-a', containers: [{ name: 'c', image: 'busybox' }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

/** Non-test TypeScript sources of a service. */
function serviceSources(service: string): { file: string; text: string }[] {
  const dir = path.join(REPO_ROOT, 'services', service, 'src');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => ({ file: `services/${service}/src/${f}`, text: readFileSync(path.join(dir, f), 'utf8') }));
}

/** What watchResource (@wirescript/kube) requests: a list, then watches from its resourceVersion. */
const WATCH_RESOURCE_VERBS = ['list', 'watch'];

/**
 * The "resource verb" pairs a service's code requests, read from its sources:
 * the core resources of the API paths it hands to watchResource
 * (`/api/v1/pods`, `/api/v1/namespaces/${ns}/pods`, `${base}/configmaps` with
 * base = `/api/v1/namespaces/${ns}`), times what watchResource does.
 */
function codeRights(service: string): string[] {
  const resources = new Set<string>();
  for (const { text } of serviceSources(service)) {
    if (!/\bwatchResource\b/.test(text)) continue;
    for (const m of text.matchAll(/\/api\/v1\/(?:namespaces\/\$\{[^}]+\}\/)?([a-z]+)(?=[`'"])/g)) resources.add(m[1]);
    if (/const base = `\/api\/v1\/namespaces\/\$\{[^}]+\}`/.test(text)) for (const m of text.matchAll(/\$\{base\}\/([a-z]+)(?=`)/g)) resources.add(m[1]);
  }
  assert.ok(resources.size > 0, `no Kubernetes API path found in the watchResource calls of services/${service}: update codeRights to how the code names them`);
  return [...resources].flatMap((r) => WATCH_RESOURCE_VERBS.map((v) => `${r} ${v}`)).sort();
}

// ---------------------------------------------------------------------------
// A cluster for helm's lookup: the test API server behind discovery

/** Kinds the chart renders, by API group and version: [resource, kind, namespaced]. */
const CHART_API: Record<string, Record<string, [string, string, boolean][]>> = {
  '': { v1: [['configmaps', 'ConfigMap', true], ['secrets', 'Secret', true], ['pods', 'Pod', true], ['services', 'Service', true], ['serviceaccounts', 'ServiceAccount', true]] },
  apps: { v1: [['deployments', 'Deployment', true], ['statefulsets', 'StatefulSet', true], ['daemonsets', 'DaemonSet', true]] },
  policy: { v1: [['poddisruptionbudgets', 'PodDisruptionBudget', true]] },
  autoscaling: { v2: [['horizontalpodautoscalers', 'HorizontalPodAutoscaler', true]] },
  'rbac.authorization.k8s.io': { v1: [['roles', 'Role', true], ['rolebindings', 'RoleBinding', true], ['clusterroles', 'ClusterRole', false], ['clusterrolebindings', 'ClusterRoleBinding', false]] },
};

/**
 * The test Kubernetes API server (which stores ConfigMaps, Secrets and Pods)
 * behind a proxy that serves discovery for every kind the chart renders and
 * answers 404 for objects of the other kinds: enough for `helm template
 * --dry-run=server` (discovery, lookup, its existence checks). Returns a
 * kubeconfig file for helm.
 */
async function clusterForHelm(kube: KubeApiServer, dir: string): Promise<{ kubeconfig: string; close(): Promise<void> }> {
  const upstream = new URL(kube.url);
  const json = (res: http.ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const resourceList = (groupVersion: string, list: [string, string, boolean][]) => ({
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion,
    resources: list.map(([name, kind, namespaced]) => ({ name, singularName: kind.toLowerCase(), namespaced, kind, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] })),
  });
  const stored = new Set(['configmaps', 'secrets', 'pods']);
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '');
    if (req.method === 'GET' && p === '/apis') {
      json(res, 200, {
        kind: 'APIGroupList', apiVersion: 'v1',
        groups: Object.entries(CHART_API).filter(([g]) => g !== '').map(([name, versions]) => {
          const vs = Object.keys(versions).map((version) => ({ groupVersion: `${name}/${version}`, version }));
          return { name, versions: vs, preferredVersion: vs[0] };
        }),
      });
      return;
    }
    if (req.method === 'GET' && p === '/api/v1') return json(res, 200, resourceList('v1', CHART_API[''].v1));
    const m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(p);
    if (req.method === 'GET' && m && CHART_API[m[1]]?.[m[2]]) return json(res, 200, resourceList(`${m[1]}/${m[2]}`, CHART_API[m[1]][m[2]]));
    const core = /^\/api\/v1\/(?:namespaces\/[^/]+\/)?([^/]+)/.exec(p);
    if (p.startsWith('/apis/') || (core && !stored.has(core[1]))) {
      return json(res, 404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'NotFound', code: 404, message: `${p} not found` });
    }
    const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (u) => {
      res.writeHead(u.statusCode ?? 502, u.headers);
      u.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kubeconfig = path.join(dir, 'kubeconfig-helm.yaml');
  await writeFile(kubeconfig, kube.kubeconfigYaml().replace(kube.url, `http://127.0.0.1:${(server.address() as { port: number }).port}`));
  return {
    kubeconfig,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A Kubernetes memory quantity in MiB (the binary and decimal suffixes the chart uses). */
function mebibytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(String(q));
  assert.ok(m, `memory quantity ${q}`);
  const factor: Record<string, number> = { Ki: 1 / 1024, Mi: 1, Gi: 1024, Ti: 1024 * 1024, K: 1e3 / 2 ** 20, M: 1e6 / 2 ** 20, G: 1e9 / 2 ** 20, T: 1e12 / 2 ** 20 };
  return Number(m[1]) * (m[2] ? factor[m[2]] : 1 / 2 ** 20);
}

// ---------------------------------------------------------------------------
// The image side of capture: how the Dockerfile grants packet-socket rights

interface DockerStage {
  name: string;
  /** Instructions, continuation lines joined, comments dropped. */
  lines: string[];
}

function dockerStages(): DockerStage[] {
  const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages: DockerStage[] = [];
  for (const l of lines) {
    if (/^FROM /i.test(l)) stages.push({ name: /\sAS\s+(\S+)$/i.exec(l)?.[1] ?? String(stages.length), lines: [l] });
    else stages.at(-1)?.lines.push(l);
  }
  return stages;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** "cap_net_raw,cap_net_admin" -> ["NET_ADMIN", "NET_RAW"]. */
function capNames(list: string): string[] {
  return list.split(',').map((c) => c.trim().replace(/^cap_/i, '').toUpperCase()).sort();
}

interface NetcapImage {
  /** Source file in the repository. */
  source: string;
  /** gcc arguments of the build stage, without -o, the output and the source. */
  gccFlags: string[];
  /** Where the runtime stage installs it (what the chart's command runs). */
  installedAt: string;
  /** The file capabilities, as setcap takes them ("cap_net_raw,cap_net_admin") and as names. */
  capsText: string;
  caps: string[];
  /** Their flags ("p": permitted only). */
  capFlags: string;
  /** Capabilities the program raises into the ambient set (WANTED in the C source). */
  raises: string[];
}

/** How the image builds and privileges netcap-exec, read from the Dockerfile and the C source; asserts each step is there. */
function netcapImage(): NetcapImage {
  const stages = dockerStages();
  const runtime = stages.at(-1)!;
  const build = stages.find((s) => s.lines.some((l) => /\bnetcap-exec\.c\b/.test(l) && /^COPY /i.test(l)));
  assert.ok(build, 'no Dockerfile stage copies netcap-exec.c');
  const copySrc = build.lines.map((l) => /^COPY\s+(\S*netcap-exec\.c)\s+(\S+)$/i.exec(l)).find(Boolean);
  assert.ok(copySrc, 'COPY <repo>/netcap-exec.c <path> in the build stage');
  const source = path.join(REPO_ROOT, copySrc[1]);
  assert.ok(existsSync(source), `${copySrc[1]} does not exist`);
  const gcc = build.lines.find((l) => /^RUN gcc\b/.test(l) && l.includes(copySrc[2]));
  assert.ok(gcc, `the build stage compiles ${copySrc[2]} with gcc`);
  const args = gcc.slice('RUN gcc'.length).trim().split(/\s+/);
  const out = args[args.indexOf('-o') + 1];
  assert.ok(args.includes('-o') && out, 'gcc -o <binary>');
  const gccFlags = args.filter((a, i) => a !== '-o' && args[i - 1] !== '-o' && a !== copySrc[2]);
  assert.ok(runtime.name !== build.name, 'netcap-exec is compiled outside the runtime stage (no compilers there)');
  const copyBin = runtime.lines.map((l) => new RegExp(`^COPY --from=${escapeRe(build.name)} ${escapeRe(out)} (\\S+)$`).exec(l)).find(Boolean);
  assert.ok(copyBin, `the runtime stage copies ${out} from ${build.name}`);
  const installedAt = copyBin[1];
  const setcapIdx = runtime.lines.findIndex((l) => /^RUN .*\bsetcap\s/.test(l));
  assert.ok(setcapIdx >= 0, 'the runtime stage runs setcap');
  const setcap = /\bsetcap\s+(cap_[\w,]+)=([eip]+)\s+(\S+)/.exec(runtime.lines[setcapIdx]);
  assert.ok(setcap, `setcap <caps>=<flags> <file>: ${runtime.lines[setcapIdx]}`);
  assert.equal(setcap[3], installedAt, 'setcap is applied to the installed netcap-exec');
  assert.match(runtime.lines[setcapIdx], new RegExp(`setcap -v ${setcap[1]}=${setcap[2]} ${escapeRe(installedAt)}`), 'the build verifies the capabilities stuck (setcap -v)');
  const aptLine = runtime.lines.findIndex((l) => /apt-get install .*\blibcap2-bin\b/.test(l));
  assert.ok(aptLine >= 0 && aptLine < setcapIdx, 'libcap2-bin (setcap) is installed in the runtime stage before setcap runs');
  const userIdx = runtime.lines.findIndex((l) => /^USER /.test(l));
  assert.ok(userIdx > setcapIdx, 'setcap runs as root, before USER');
  const c = readFileSync(source, 'utf8');
  const wanted = /static const int WANTED\[\]\s*=\s*\{([^}]*)\}/.exec(c);
  assert.ok(wanted, 'WANTED[] in netcap-exec.c');
  return {
    source, gccFlags, installedAt, capsText: setcap[1], caps: capNames(setcap[1]), capFlags: setcap[2],
    raises: capNames(wanted[1].replace(/\bCAP_/g, '')),
  };
}

/** The runtime stage's ENTRYPOINT and numeric USER. */
function dockerRuntime(): { entrypoint: string[]; uid: number } {
  const runtime = dockerStages().at(-1)!;
  const entry = runtime.lines.find((l) => l.startsWith('ENTRYPOINT '));
  const user = runtime.lines.find((l) => l.startsWith('USER '));
  assert.ok(entry && user, 'runtime stage has ENTRYPOINT and USER');
  return { entrypoint: JSON.parse(entry.slice('ENTRYPOINT '.length)) as string[], uid: Number(user.split(' ')[1].split(':')[0]) };
}

/** Whether .dockerignore leaves `rel` (a repository-relative path) in the build context, with Docker's rules: last match wins, a pattern also matches what is under it. */
function inDockerContext(rel: string): boolean {
  const patterns = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const glob = (pattern: string) => {
    const src = pattern.replace(/^\//, '').replace(/\/$/, '');
    let re = '';
    for (let i = 0; i < src.length; i++) {
      if (src.startsWith('**/', i)) {
        re += '(?:.*/)?';
        i += 2;
      } else if (src.startsWith('**', i)) {
        re += '.*';
        i += 1;
      } else if (src[i] === '*') re += '[^/]*';
      else if (src[i] === '?') re += '[^/]';
      else re += escapeRe(src[i]);
    }
    return new RegExp(`^${re}$`);
  };
  const parts = rel.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let included = true;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const re = glob(negated ? raw.slice(1) : raw);
    if (prefixes.some((p) => re.test(p))) included = negated;
  }
  return included;
}

// ---------------------------------------------------------------------------

describe('chart, values and Dockerfile agree with the code (static)', () => {
  test('Chart.yaml: apiVersion v2, appVersion is the package version', () => {
    const chart = YAML.parse(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as K8s;
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'wirescript');
    assert.equal(chart.type, 'application');
    assert.match(String(chart.version), /^\d+\.\d+\.\d+/);
    assert.equal(String(chart.appVersion), pkg.version, 'Chart.yaml appVersion (the default image tag) must equal package.json version');
  });

  test('values.yaml: every key is documented by a comment', () => {
    const undocumented = valueKeys().filter((k) => !k.documented).map((k) => k.path);
    assert.deepEqual(undocumented, [], `values without a comment: ${undocumented.join(', ')}`);
  });

  test('every .Values path a template reads exists in values.yaml', () => {
    const refs = referencedValuePaths();
    assert.ok(refs.size > 20, `too few .Values references found (${refs.size}): is the scan broken?`);
    const missing = [...refs].filter(([p]) => !hasPath(values, p)).map(([p, files]) => `${p} (${[...new Set(files)].join(', ')})`);
    assert.deepEqual(missing, [], `templates read values missing from values.yaml: ${missing.join('; ')}`);
  });

  test('every value in values.yaml is read by a template (or reserved for a service not built yet)', () => {
    const refs = [...referencedValuePaths().keys()];
    const allText = [...templates.values()].join('\n');
    const unused = valueKeys()
      .map((k) => k.path)
      .filter((p) => !RESERVED_VALUES.some((r) => p === r || p.startsWith(`${r}.`)))
      .filter((p) => {
        if (refs.some((r) => r === p || r.startsWith(`${p}.`))) return false;
        // Read through a dict handed to a helper (`include "x" $sr.config` then `.hookTimeout`).
        const parent = p.split('.').slice(0, -1).join('.');
        const leaf = p.split('.').at(-1)!;
        return !(parent && refs.includes(parent) && new RegExp(`\\.${leaf}\\b`).test(allText));
      });
    assert.deepEqual(unused, [], `values no template reads: ${unused.join(', ')}`);
    for (const r of RESERVED_VALUES) assert.ok(hasPath(values, r), `reserved value ${r} is gone: drop it from RESERVED_VALUES`);
  });

  test('every env variable a wirescript template names is read by the code', () => {
    const named = new Set<string>();
    for (const [file, text] of templates) {
      if (file.startsWith('nats-')) continue; // the NATS server's own env (SERVER_NAME)
      // Quoted upper-case names, but not the capability names a template looks up with `has "NET_RAW" ...`.
      for (const m of text.matchAll(/(?<!\bhas )"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"/g)) named.add(m[1]);
      for (const m of text.matchAll(/-\s+name:\s+([A-Z][A-Z0-9_]+)\s*$/gm)) named.add(m[1]);
    }
    for (const name of [...RUNNER_ENV, ...CAPTURE_ENV, 'CAPTURE_FILTER', 'PCAP_RING_DIR', 'PCAP_RING_MAX_MB', 'PCAP_RING_MAX_FILES', ...HUB_ENV, 'POD_NAMESPACES', ...CONFIG_SYNC_ENV]) {
      assert.ok(named.has(name), `templates do not set ${name}`);
    }
    assert.ok(!named.has('CAPTURE_PCAP'), 'the capture DaemonSet must not replay a file (CAPTURE_PCAP)');
    assert.ok(!named.has('SCRIPTS_DIR'), 'config-sync in a cluster reads the ConfigMap, not a folder (SCRIPTS_DIR)');
    const unknown = [...named].filter((n) => !ALL_VAR_NAMES.has(n));
    assert.deepEqual(unknown, [], `templates set env variables no service reads: ${unknown.join(', ')}`);
  });

  test('the script storage names are the Kubeshark ones, and config-sync\'s defaults', () => {
    assert.equal(values.scripting.configMapName, 'kubeshark-config-map');
    assert.equal(values.scripting.secretName, 'kubeshark-secret');
    assert.equal(values.scripting.configMapName, DEFAULT_CONFIGMAP_NAME);
    assert.equal(values.scripting.secretName, DEFAULT_SECRET_NAME);
    // The keys the chart's ConfigMap and Secret carry are the ones config-sync reads.
    assert.match(templates.get('scripting-configmap.yaml')!, new RegExp(`^\\s+${SCRIPTS_KEY}: "\\{\\}"$`, 'm'));
    assert.match(templates.get('scripting-configmap.yaml')!, new RegExp(`^\\s+${ACTIVE_SCRIPTS_KEY}: ""$`, 'm'));
    assert.match(templates.get('scripting-secret.yaml')!, new RegExp(`^\\s+${ENV_KEY}: `, 'm'));
  });

  test('hub and config-sync reach the Kubernetes API only through watchResource (list + watch); config-sync selects its two objects by metadata.name', () => {
    for (const service of ['hub', 'config-sync']) {
      for (const { file, text } of serviceSources(service)) {
        assert.doesNotMatch(text, /from '@kubernetes\/client-node'/, `${file} uses the Kubernetes client directly: the chart's RBAC would not know what it requests`);
        for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@wirescript\/kube'/g)) {
          const valueImports = m[1].split(',').map((x) => x.trim()).filter((x) => x && !x.startsWith('type '));
          const other = valueImports.filter((x) => !['watchResource', 'kubeConfigFrom', 'KubeConfigError'].includes(x));
          assert.deepEqual(other, [], `${file} imports ${other.join(', ')} from @wirescript/kube: a new kind of API request, which the chart's RBAC must grant (and codeRights must learn)`);
        }
      }
    }
    assert.deepEqual(codeRights('hub'), ['pods list', 'pods watch']);
    assert.deepEqual(codeRights('config-sync'), ['configmaps list', 'configmaps watch', 'secrets list', 'secrets watch']);
    // resourceNames can restrict list and watch only when the request selects metadata.name: every watch of config-sync does.
    const sources = serviceSources('config-sync').filter((f) => /\bwatchResource\b/.test(f.text));
    const calls = sources.flatMap((f) => [...f.text.matchAll(/watchResource<[^>]*>\(|watchResource\(/g)].map((m) => f.text.slice(m.index, f.text.indexOf('});', m.index))));
    assert.equal(calls.length, 2, 'config-sync watches the ConfigMap and the Secret');
    for (const call of calls) assert.match(call, /fieldSelector: `metadata\.name=\$\{o\.(configMapName|secretName)\}`/, `a watch without a metadata.name field selector: ${call.slice(0, 200)}`);
  });

  test('Dockerfile: Node 24 stages, npm ci --omit=dev, non-root, ENTRYPOINT on the real CLI', () => {
    const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const instr = (name: string) => lines.filter((l) => l.toUpperCase().startsWith(`${name} `));
    const nodeImage = /ARG NODE_IMAGE=(\S+)/.exec(text)?.[1];
    assert.equal(nodeImage, 'node:24-bookworm-slim');
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as K8s;
    assert.match(pkg.engines.node, />=24\b/, 'package.json engines and the image disagree on Node');
    const froms = instr('FROM');
    assert.ok(froms.length >= 2, 'multi-stage build');
    for (const f of froms) assert.match(f, /^FROM \$\{NODE_IMAGE\}/);
    const runs = instr('RUN').join('\n');
    assert.match(runs, /npm ci --omit=dev/);
    for (const p of ['python3', 'make', 'g\\+\\+', 'libpcap-dev', 'libpcap0\\.8']) assert.match(runs, new RegExp(`\\b${p}`));

    // The runtime stage (the last one) runs as a numeric non-root user.
    const lastFrom = lines.findLastIndex((l) => l.startsWith('FROM '));
    const runtime = lines.slice(lastFrom);
    const user = runtime.find((l) => l.startsWith('USER '));
    assert.match(user ?? '', /^USER [1-9]\d*(:\d+)?$/, 'runtime stage needs a numeric non-root USER');
    assert.equal(String(user!.split(' ')[1]).split(':')[0], String(values.scriptRunner.podSecurityContext.runAsUser), 'image user and the chart runAsUser differ');

    const entrypoint = JSON.parse(runtime.find((l) => l.startsWith('ENTRYPOINT '))!.slice('ENTRYPOINT '.length)) as string[];
    assert.deepEqual(entrypoint, ['node', 'bin/wirescript.ts']);
    assert.ok(existsSync(path.join(REPO_ROOT, entrypoint[1])), `${entrypoint[1]} does not exist`);
    assert.equal(pkg.bin.wirescript, entrypoint[1], 'the image entrypoint and the package bin differ');
    const cmd = JSON.parse(runtime.find((l) => l.startsWith('CMD '))!.slice('CMD '.length)) as string[];
    assert.deepEqual(cmd, ['--help']);
    const workdir = runtime.find((l) => l.startsWith('WORKDIR '));
    assert.equal(workdir, 'WORKDIR /app');

    // The manifests step copies exactly the workspace globs' package.json files.
    assert.deepEqual(pkg.workspaces, ['packages/*', 'services/*'], 'workspaces changed: update the Dockerfile manifests stage');
    assert.match(text, /find packages services -mindepth 2 -maxdepth 2 -name package\.json/);
  });

  test('.dockerignore keeps what the image runs in the build context', () => {
    const patterns = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const needed of ['bin', 'packages', 'services', 'package.json', 'package-lock.json', 'examples']) {
      assert.ok(!patterns.some((p) => p === needed || p === `${needed}/` || p === `/${needed}`), `.dockerignore excludes ${needed}`);
    }
    for (const excluded of ['**/node_modules', '.git']) assert.ok(patterns.includes(excluded), `.dockerignore should exclude ${excluded}`);
    for (const kept of ['bin/wirescript.ts', 'services/capture/src/main.ts', path.relative(REPO_ROOT, netcapImage().source)]) {
      assert.ok(inDockerContext(kept), `.dockerignore leaves ${kept} out of the build context`);
    }
    for (const dropped of ['deploy/helm/wirescript/values.yaml', 'test/deploy/helm.ts', 'node_modules/yaml/package.json']) {
      assert.ok(!inDockerContext(dropped), `.dockerignore should keep ${dropped} out of the build context`);
    }
  });

  test('Dockerfile manifests stage: npm ci gets every workspace manifest and the inputs of every native addon it compiles', async (t) => {
    if (process.platform !== 'linux') {
      t.skip('the stage\'s shell script uses GNU find and cp');
      return;
    }
    const manifests = dockerStages().find((st) => st.name === 'manifests');
    assert.ok(manifests, 'a manifests stage');
    const run = manifests.lines.find((l) => l.startsWith('RUN ') && l.includes('/out'));
    assert.ok(run, 'the manifests stage collects files into /out');
    // The stage's own script, run on this checkout, collecting into a temporary folder instead of /out.
    const out = await mkdtemp(path.join(os.tmpdir(), 'wirescript-manifests-'));
    try {
      await promisify(execFile)('sh', ['-c', run.slice('RUN '.length).replaceAll('/out', out)], { cwd: REPO_ROOT, timeout: 60_000 });
      const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as K8s;
      for (const f of ['package.json', 'package-lock.json']) assert.ok(existsSync(path.join(out, f)), `${f} not collected`);
      for (const ws of pkg.workspaces as string[]) {
        const parent = ws.replace(/\/\*$/, '');
        for (const name of readdirSync(path.join(REPO_ROOT, parent))) {
          const dir = path.join(parent, name);
          if (existsSync(path.join(REPO_ROOT, dir, 'package.json'))) assert.ok(existsSync(path.join(out, dir, 'package.json')), `${dir}/package.json not collected`);
          const gypFile = path.join(REPO_ROOT, dir, 'binding.gyp');
          if (!existsSync(gypFile)) continue;
          // npm ci runs node-gyp in this workspace: binding.gyp and every source it names must be there.
          const gyp = JSON.parse(readFileSync(gypFile, 'utf8').replace(/#.*$/gm, '')) as { targets: { sources?: string[] }[] };
          for (const f of ['binding.gyp', ...gyp.targets.flatMap((tg) => tg.sources ?? [])]) {
            assert.ok(existsSync(path.join(out, dir, f)), `${dir}/${f} (native addon input) is not collected: npm ci cannot build it`);
          }
          // A build folder from the host (even a committed one) must not replace the addon the image compiles.
          assert.ok(!inDockerContext(`${dir}/build/Release/addon.node`), `.dockerignore must keep ${dir}/build out of the build context`);
        }
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  test('capture: the image hands NET_RAW/NET_ADMIN to the non-root user exactly as the chart grants them', () => {
    const img = netcapImage();
    const { entrypoint, uid } = dockerRuntime();
    // Permitted only, no effective bit: exec never fails in a pod without the
    // capabilities (every other service drops ALL), and node is not a
    // privileged binary (no AT_SECURE: NODE_OPTIONS, NODE_EXTRA_CA_CERTS work).
    assert.equal(img.capFlags, 'p', `netcap-exec file capabilities must be permitted-only (=p), got =${img.capFlags}`);
    assert.deepEqual(img.raises, img.caps, 'netcap-exec.c WANTED[] and the setcap list differ: a capability would be granted but not passed on, or the reverse');
    assert.equal(entrypoint[0], 'node', 'the ENTRYPOINT stays plain node: only the capture pod goes through netcap-exec');
    assert.ok(!img.installedAt.startsWith('/app/'), 'netcap-exec lives outside the app tree');
    const sc = values.capture.securityContext;
    assert.deepEqual([...sc.capabilities.add].sort(), img.caps, 'capture.securityContext.capabilities.add must be exactly what netcap-exec carries (file capabilities)');
    assert.deepEqual(sc.capabilities.drop, ['ALL']);
    assert.notEqual(sc.privileged, true);
    const psc = values.capture.podSecurityContext;
    assert.equal(psc.runAsNonRoot, true, 'capture runs as the image user, not root');
    assert.equal(psc.runAsUser, uid, 'capture runAsUser and the image USER differ');
  });
});

describe('chart rendered by helm', () => {
  before(async () => {
    await ensureHelm();
  });

  test('helm lint --strict passes', async () => {
    const out = await helmLint();
    assert.match(out, /0 chart\(s\) failed/);
  });

  test('default values: the objects, wired together', async () => {
    const objs = await render();
    assert.deepEqual(kinds(objs), [
      'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'ConfigMap', 'DaemonSet', 'Deployment', 'Deployment', 'Deployment', 'PodDisruptionBudget',
      'Role', 'RoleBinding', 'Service', 'Service', 'ServiceAccount', 'ServiceAccount', 'ServiceAccount', 'StatefulSet',
    ]);
    for (const o of objs) {
      assert.equal(o.metadata.namespace, CLUSTER_SCOPED.has(o.kind) ? undefined : 'traffic', `${o.kind} ${o.metadata.name} namespace`);
      assert.equal(o.metadata.labels['app.kubernetes.io/instance'], 'ws');
      assert.ok(String(o.metadata.name).length <= 63);
    }
    // One identity per service that talks to Kubernetes; the shared one (runner, capture) has no rights at all.
    assert.deepEqual(objs.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name).sort(), ['ws-wirescript', 'ws-wirescript-config-sync', 'ws-wirescript-hub']);
    assert.deepEqual(grantsOf(objs, { name: 'ws-wirescript', namespace: 'traffic' }), []);

    const sa = only(objs, 'ServiceAccount', 'ws-wirescript');
    const dep = only(objs, 'Deployment', '-script-runner');
    const podSpec = dep.spec.template.spec;
    assert.equal(dep.spec.replicas, values.scriptRunner.replicaCount);
    assert.ok(matches(dep.spec.selector.matchLabels, dep.spec.template.metadata.labels), 'Deployment selector matches its pods');
    assert.equal(podSpec.serviceAccountName, sa.metadata.name);
    assert.equal(podSpec.securityContext.runAsNonRoot, true);
    const c = container(dep, 'script-runner');
    assert.equal(c.image, `wirescript:${YAML.parse(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')).appVersion}`);
    assert.deepEqual(c.args, ['script-runner']);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(c.ports, [{ name: 'health', containerPort: values.scriptRunner.healthPort, protocol: 'TCP' }], 'only the health port without Prometheus');
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/livez', port: 'health' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'health' });
    assert.equal(dep.spec.template.metadata.annotations?.['prometheus.io/scrape'], undefined);

    const env = envMap(c);
    for (const name of RUNNER_ENV) assert.ok(env.has(name), `env ${name} missing`);
    assert.deepEqual(env.get('NODE_NAME')!.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
    assert.deepEqual(env.get('REPLICA_ID')!.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.equal(env.get('HOOK_TIMEOUT')!.value, values.scriptRunner.config.hookTimeout);
    assert.equal(env.get('ITEM_QUEUE_CAPACITY')!.value, String(values.scriptRunner.config.itemQueueCapacity));
    assert.equal(env.get('DRAIN_TIMEOUT')!.value, `${values.scriptRunner.drainTimeoutSeconds}s`);
    for (const absent of ['PROMETHEUS_PORT', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS']) assert.ok(!env.has(absent), `${absent} set by default`);

    // NATS_URL points at the bundled server's Service, on its client port.
    const svc = only(objs, 'Service', '-nats');
    const natsUrl = new URL(env.get('NATS_URL')!.value);
    assert.equal(natsUrl.protocol, 'nats:');
    assert.equal(natsUrl.hostname, `${svc.metadata.name}.traffic.svc`);
    assert.ok((svc.spec.ports as K8s[]).some((p) => p.name === 'client' && String(p.port) === natsUrl.port));

    // The rendered env loads with the service's own config loader; what the
    // chart sets equals the code's default (the chart restates it, never drifts).
    assertEnvMatchesCode(objs);
    const schema = schemas.get('script-runner')!;
    const rendered = loadConfig(schema, podEnv(c, { name: 'pod-0', nodeName: 'node-a' }));
    const defaults = loadConfig(schema, {});
    for (const [key, spec] of Object.entries(schema)) {
      if (!env.has(spec.name) || INTENTIONALLY_DIFFERENT.has(spec.name)) continue;
      assert.deepEqual((rendered as K8s)[key], (defaults as K8s)[key], `values.yaml default for ${spec.name} differs from the code's default`);
    }
    // The container's memory limit leaves room above the scripts' VM heap.
    const limit = String(c.resources.limits.memory);
    const unit = { Mi: 1, Gi: 1024 }[limit.slice(-2)];
    assert.ok(unit, `memory limit ${limit} in Mi or Gi`);
    assert.ok(parseFloat(limit) * unit! >= 2 * rendered.memoryLimitMb, `memory limit ${limit} too close to SCRIPT_MEMORY_LIMIT_MB=${rendered.memoryLimitMb}`);
    // Kubernetes waits longer than the runner's drain.
    assert.ok(podSpec.terminationGracePeriodSeconds * 1000 > rendered.drainTimeoutMs, 'terminationGracePeriodSeconds must exceed DRAIN_TIMEOUT');

    const pdb = only(objs, 'PodDisruptionBudget');
    assert.equal(pdb.apiVersion, 'policy/v1');
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.ok(matches(pdb.spec.selector.matchLabels, dep.spec.template.metadata.labels), 'PDB selects the runner pods');

    // Bundled NATS: StatefulSet with JetStream on a PVC, probes on the monitor port.
    const sts = only(objs, 'StatefulSet', '-nats');
    const headless = only(objs, 'Service', '-nats-headless');
    const cm = only(objs, 'ConfigMap', '-nats-config');
    assert.equal(sts.spec.serviceName, headless.metadata.name);
    assert.equal(headless.spec.clusterIP, 'None');
    assert.ok(matches(svc.spec.selector, sts.spec.template.metadata.labels), 'NATS Service selects the NATS pod');
    assert.ok(matches(sts.spec.selector.matchLabels, sts.spec.template.metadata.labels));
    assert.ok(!matches(pdb.spec.selector.matchLabels, sts.spec.template.metadata.labels), 'runner PDB must not select NATS');
    const nats = container(sts, 'nats');
    assert.match(nats.image, /^nats:/);
    const conf = String(cm.data['nats.conf']);
    assert.match(conf, /jetstream\s*\{[^}]*store_dir:\s*\/data/s);
    const dataMount = (nats.volumeMounts as K8s[]).find((m) => m.name === 'data');
    assert.equal(dataMount?.mountPath, '/data');
    const [claim] = sts.spec.volumeClaimTemplates as K8s[];
    assert.equal(claim.metadata.name, 'data');
    assert.equal(claim.spec.resources.requests.storage, values.nats.persistence.size);
    const confMount = (nats.volumeMounts as K8s[]).find((m) => m.name === 'config');
    assert.deepEqual(nats.command, ['nats-server', '--config', `${confMount!.mountPath}/nats.conf`]);
    assert.equal((sts.spec.template.spec.volumes as K8s[]).find((v) => v.name === 'config')?.configMap.name, cm.metadata.name);
    const ports = Object.fromEntries((nats.ports as K8s[]).map((p) => [p.name, p.containerPort]));
    assert.deepEqual(ports, { client: values.nats.clientPort, monitor: values.nats.monitorPort });
    assert.match(conf, new RegExp(`listen:\\s*0\\.0\\.0\\.0:${ports.client}\\b`));
    assert.match(conf, new RegExp(`http:\\s*0\\.0\\.0\\.0:${ports.monitor}\\b`));
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      assert.equal(nats[probe]?.httpGet?.port, 'monitor', `NATS ${probe}`);
      assert.match(nats[probe].httpGet.path, /^\/healthz/);
    }
    assert.match(sts.spec.template.metadata.annotations['checksum/config'], /^[0-9a-f]{64}$/);
  });

  test('replicas and runner settings follow the values (whole numbers stay integers)', async () => {
    const objs = await render({
      values: [{ scriptRunner: { replicaCount: 5, config: { itemQueueCapacity: 10_000_000, hookTimeout: '1s', logRateLimit: 0 }, drainTimeoutSeconds: 45 } }],
    });
    const dep = only(objs, 'Deployment', '-script-runner');
    assert.equal(dep.spec.replicas, 5);
    const env = envMap(container(dep));
    assert.equal(env.get('ITEM_QUEUE_CAPACITY')!.value, '10000000');
    assert.equal(env.get('HOOK_TIMEOUT')!.value, '1s');
    assert.equal(env.get('LOG_RATE_LIMIT')!.value, '0');
    assert.equal(env.get('DRAIN_TIMEOUT')!.value, '45s');
    assert.equal(dep.spec.template.spec.terminationGracePeriodSeconds, 65);
    assertEnvMatchesCode(objs);
  });

  test('an empty runner setting is left to the code default', async () => {
    const objs = await render({ values: [{ scriptRunner: { config: { hookTimeout: '', statusInterval: null } } }] });
    const env = envMap(container(only(objs, 'Deployment', '-script-runner')));
    assert.ok(!env.has('HOOK_TIMEOUT'));
    assert.ok(!env.has('STATUS_INTERVAL'));
    assertEnvMatchesCode(objs);
  });

  test('external NATS: no bundled server, NATS_URL from nats.url or from a Secret', async () => {
    const objs = await render({ set: ['nats.enabled=false', 'nats.url=tls://nats.messaging.svc:4222'] });
    assert.deepEqual(kinds(objs), [
      'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'Deployment', 'Deployment', 'Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding',
      'ServiceAccount', 'ServiceAccount', 'ServiceAccount',
    ]);
    const env = envMap(container(only(objs, 'Deployment', '-script-runner')));
    assert.equal(env.get('NATS_URL')!.value, 'tls://nats.messaging.svc:4222');
    assertEnvMatchesCode(objs);

    const withSecret = await render({ set: ['nats.enabled=false', 'nats.urlSecret.name=nats-creds'] });
    const env2 = envMap(container(only(withSecret, 'Deployment', '-script-runner')));
    assert.deepEqual(env2.get('NATS_URL')!.valueFrom, { secretKeyRef: { name: 'nats-creds', key: 'NATS_URL' } });
    for (const w of ['-hub', '-config-sync']) {
      assert.deepEqual(envMap(container(only(withSecret, 'Deployment', w))).get('NATS_URL')!.valueFrom, { secretKeyRef: { name: 'nats-creds', key: 'NATS_URL' } }, `${w} NATS_URL`);
    }
  });

  test('HPA on: autoscaling/v2 on CPU targets the Deployment, which leaves replicas to it', async () => {
    const objs = await render({ set: ['scriptRunner.autoscaling.enabled=true', 'scriptRunner.autoscaling.maxReplicas=20'] });
    const dep = only(objs, 'Deployment', '-script-runner');
    const hpa = only(objs, 'HorizontalPodAutoscaler');
    assert.equal(dep.spec.replicas, undefined);
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name });
    assert.equal(hpa.spec.minReplicas, values.scriptRunner.autoscaling.minReplicas);
    assert.equal(hpa.spec.maxReplicas, 20);
    assert.deepEqual(hpa.spec.metrics, [
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: values.scriptRunner.autoscaling.targetCPUUtilizationPercentage } } },
    ]);
    assert.ok(container(dep).resources.requests.cpu, 'the HPA needs a CPU request');
  });

  test('Prometheus on: PROMETHEUS_PORT, a metrics port and scrape annotations agree', async () => {
    const objs = await render({ set: ['telemetry.prometheus.enabled=true', 'telemetry.prometheus.port=9555'], values: [{ scriptRunner: { podAnnotations: { team: 'net' } } }] });
    const dep = only(objs, 'Deployment', '-script-runner');
    const c = container(dep);
    const env = envMap(c);
    assert.equal(env.get('PROMETHEUS_PORT')!.value, '9555');
    assert.deepEqual(c.ports, [{ name: 'health', containerPort: 8081, protocol: 'TCP' }, { name: 'metrics', containerPort: 9555, protocol: 'TCP' }]);
    assert.deepEqual(dep.spec.template.metadata.annotations, {
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '9555',
      'prometheus.io/path': '/metrics',
      team: 'net',
    });
    assertEnvMatchesCode(objs);
    const cfg = loadConfig(schemas.get('script-runner')!, podEnv(c, { name: 'p', nodeName: 'n' }));
    assert.equal(cfg.prometheusPort, 9555);
  });

  test('telemetry values map to the OpenTelemetry variables', async () => {
    const objs = await render({
      values: [{ telemetry: { otlpEndpoint: 'http://otel-collector.observability:4318', otlpHeadersSecret: { name: 'otel' }, tracesExporter: 'otlp', metricsExporter: 'otlp', metricExportInterval: '30s', traceSampleRatio: 0.25 }, logLevel: 'debug' }],
    });
    const c = container(only(objs, 'Deployment', '-script-runner'));
    const env = envMap(c);
    assert.equal(env.get('OTEL_EXPORTER_OTLP_ENDPOINT')!.value, 'http://otel-collector.observability:4318');
    assert.deepEqual(env.get('OTEL_EXPORTER_OTLP_HEADERS')!.valueFrom, { secretKeyRef: { name: 'otel', key: 'OTEL_EXPORTER_OTLP_HEADERS' } });
    assert.equal(env.get('TRACE_SAMPLE_RATIO')!.value, '0.25');
    assert.equal(env.get('LOG_LEVEL')!.value, 'debug');
    assertEnvMatchesCode(objs);
    const cfg = loadConfig(schemas.get('script-runner')!, podEnv(c, { name: 'p', nodeName: 'n' }));
    assert.equal(cfg.metricExportInterval, 30_000);
    assert.equal(cfg.traceSampleRatio, 0.25);
  });

  test('NATS without persistence uses an emptyDir; pass-through values land where they belong', async () => {
    const objs = await render({
      values: [{
        nats: { persistence: { enabled: false } },
        imagePullSecrets: [{ name: 'regcred' }],
        scriptRunner: { nodeSelector: { pool: 'traffic' }, tolerations: [{ key: 'k', operator: 'Exists' }], extraEnv: [{ name: 'QUEUE_GROUP', value: 'blue' }] },
      }],
    });
    const sts = only(objs, 'StatefulSet', '-nats');
    assert.equal(sts.spec.volumeClaimTemplates, undefined);
    assert.deepEqual((sts.spec.template.spec.volumes as K8s[]).find((v) => v.name === 'data'), { name: 'data', emptyDir: {} });
    const dep = only(objs, 'Deployment', '-script-runner');
    assert.deepEqual(dep.spec.template.spec.nodeSelector, { pool: 'traffic' });
    assert.deepEqual(dep.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
    assert.deepEqual(sts.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
    assert.equal(envMap(container(dep)).get('QUEUE_GROUP')!.value, 'blue');
    assertEnvMatchesCode(objs);
  });

  test('misconfigurations fail the render with a message saying what to fix', async () => {
    await assert.rejects(render({ set: ['nats.enabled=false'] }), /no NATS server: keep nats.enabled=true, or set nats.url/);
    await assert.rejects(render({ set: ['nats.url=nats://elsewhere:4222'] }), /either nats.enabled=true .* not both/);
    await assert.rejects(render({ set: ['scriptRunner.drainTimeoutSeconds=30', 'scriptRunner.terminationGracePeriodSeconds=30'] }), /terminationGracePeriodSeconds \(30\) must exceed scriptRunner.drainTimeoutSeconds \(30\)/);
    await assert.rejects(
      render({ set: ['scriptRunner.autoscaling.enabled=true'], values: [{ scriptRunner: { resources: { requests: { cpu: null } } } }] }),
      /autoscaling needs scriptRunner.resources.requests.cpu/,
    );
  });

  test('the longest release name helm accepts still gives valid object names', async () => {
    const release = `r${'x'.repeat(51)}9`; // 53 characters, helm's limit
    const objs = await render({ release });
    const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
    for (const o of objs) {
      assert.ok(dns1123Label.test(o.metadata.name) && o.metadata.name.length <= 63, `${o.kind} ${o.metadata.name}`);
      for (const v of Object.values(o.metadata.labels ?? {})) assert.ok(String(v).length <= 63, `label value ${v}`);
    }
    // A StatefulSet's name plus "-<10-char hash>" must fit the controller-revision-hash label (63).
    assert.ok(only(objs, 'StatefulSet', '-nats').metadata.name.length <= 52);
    assert.ok(only(objs, 'DaemonSet', '-capture').metadata.name.length <= 63);
    // Cluster-scoped names carry the namespace, so releases of one name in two namespaces do not collide; cut with a hash when long.
    const [a, b] = await Promise.all(['1', '2'].map((last) => render({ release, namespace: `${'n'.repeat(62)}${last}` })));
    const [crA, crB] = [only(a, 'ClusterRole'), only(b, 'ClusterRole')];
    for (const o of [crA, crB, only(a, 'ClusterRoleBinding')]) assert.ok(dns1123Label.test(o.metadata.name) && o.metadata.name.length <= 63, `${o.kind} ${o.metadata.name}`);
    assert.notEqual(crA.metadata.name, crB.metadata.name);
    assert.equal(only(a, 'ClusterRoleBinding').roleRef.name, crA.metadata.name);
    assert.equal(only(objs, 'ClusterRole').metadata.name.length <= 63, true);
  });

  test('capture (defaults): a DaemonSet on the host network, NET_RAW/NET_ADMIN through netcap-exec, env = the code defaults', async () => {
    const objs = await render();
    const ds = only(objs, 'DaemonSet', '-capture');
    const spec = ds.spec.template.spec;
    const c = container(ds, 'capture');
    const img = netcapImage();
    const { entrypoint, uid } = dockerRuntime();

    // One pod per node, on every node, updated one node at a time, never two on a node.
    assert.ok(matches(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels), 'DaemonSet selector matches its pods');
    for (const o of objs.filter((x) => x !== ds && x.spec?.selector)) {
      const sel = o.spec.selector.matchLabels ?? o.spec.selector;
      assert.ok(!matches(sel, ds.spec.template.metadata.labels), `${o.kind} ${o.metadata.name} selects the capture pods`);
    }
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: values.capture.maxUnavailable, maxSurge: 0 } });
    assert.deepEqual(spec.tolerations, [{ operator: 'Exists' }], 'capture tolerates every taint by default');
    assert.deepEqual(spec.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(spec.priorityClassName, undefined);

    // The node's network, cluster DNS, no API token.
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet');
    assert.equal(spec.automountServiceAccountToken, false);
    assert.equal(spec.serviceAccountName, only(objs, 'ServiceAccount', 'ws-wirescript').metadata.name);

    // The image's entrypoint behind netcap-exec, as the image user, with only NET_RAW and NET_ADMIN.
    assert.deepEqual(c.command, [img.installedAt, ...entrypoint], 'capture command = netcap-exec + the image ENTRYPOINT');
    assert.deepEqual(c.args, ['capture']);
    assert.equal(c.image, only(objs, 'Deployment', '-script-runner').spec.template.spec.containers[0].image, 'one image for every service');
    assert.deepEqual([...c.securityContext.capabilities.add].sort(), img.caps);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(c.securityContext.privileged, undefined);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.securityContext.runAsUser, uid);
    assert.ok((c.volumeMounts as K8s[]).some((m) => m.name === 'tmp' && m.mountPath === '/tmp'));
    // The runner, which drops ALL, runs plain node.
    const runner = container(only(objs, 'Deployment', '-script-runner'));
    assert.equal(runner.command, undefined);
    assert.deepEqual(runner.securityContext.capabilities, { drop: ['ALL'] });

    // Env: the variables capture reads, loaded by its own loader, equal to the code's defaults.
    const env = envMap(c);
    for (const name of CAPTURE_ENV) assert.ok(env.has(name), `capture env ${name} missing`);
    assert.deepEqual(env.get('NODE_NAME')!.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
    assert.deepEqual(env.get('REPLICA_ID')!.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.equal(env.get('NATS_URL')!.value, envMap(runner).get('NATS_URL')!.value);
    assertEnvMatchesCode(objs);
    const schema = schemas.get('capture')!;
    for (const v of Object.values(schema)) {
      assert.ok(env.has(v.name) || Object.hasOwn(CAPTURE_ENV_LEFT_OUT, v.name), `services/capture reads ${v.name}, which the chart neither sets nor lists in CAPTURE_ENV_LEFT_OUT`);
    }
    for (const name of Object.keys(CAPTURE_ENV_LEFT_OUT)) assert.ok(varNames(schema).has(name), `CAPTURE_ENV_LEFT_OUT names ${name}, which capture no longer reads`);
    for (const name of Object.keys(CAPTURE_ENV_LEFT_OUT)) assert.ok(!env.has(name), `${name} set by default`);
    const rendered = loadCaptureConfig(podEnv(c, { name: 'ws-wirescript-capture-x2k9p', nodeName: 'node-a' }));
    const defaults = loadCaptureConfig({});
    for (const [key, v] of Object.entries(schema)) {
      if (!env.has(v.name) || INTENTIONALLY_DIFFERENT.has(v.name)) continue;
      assert.deepEqual((rendered as K8s)[key], (defaults as K8s)[key], `values.yaml default for ${v.name} differs from the code's default`);
    }
    assert.equal(rendered.captureInterface, 'any');
    assert.equal(rendered.capturePcap, undefined);

    // Probes on the port named health, which is HEALTH_PORT.
    assert.deepEqual(c.ports, [{ name: 'health', containerPort: rendered.healthPort, protocol: 'TCP' }], 'only the health port without Prometheus');
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/livez', port: 'health' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'health' });
    assert.equal(ds.spec.template.metadata.annotations?.['prometheus.io/scrape'], undefined);

    // Kubernetes waits for both halves of the shutdown (queues, then NATS), each bounded by DRAIN_TIMEOUT.
    assert.ok(spec.terminationGracePeriodSeconds * 1000 > 2 * rendered.drainTimeoutMs, 'terminationGracePeriodSeconds must exceed 2 x DRAIN_TIMEOUT by default');
    // Memory: the kernel ring, the publish queue (~4 KiB an item) and a Node heap fit under the limit.
    const limitMi = mebibytes(c.resources.limits.memory);
    const needMi = rendered.captureBufferMb + Math.ceil((rendered.publishQueueCapacity * 4) / 1024) + 256;
    assert.ok(limitMi >= needMi, `capture memory limit ${c.resources.limits.memory} below CAPTURE_BUFFER_MB + queue + heap (${needMi}Mi)`);
    assert.ok(mebibytes(c.resources.requests.memory) >= rendered.captureBufferMb, 'the memory request covers at least the kernel ring');
  });

  test('capture overrides: interface and filter, pcap ring (emptyDir sized from its bound, or your volume), Prometheus, priority, rollout', async () => {
    const objs = await render({
      set: ['telemetry.prometheus.enabled=true', 'capture.priorityClassName=wirescript-node', 'capture.maxUnavailable=10%'],
      values: [{ capture: { config: { interface: 'eth0', filter: 'not port 4222', bufferMb: 512, tcpIdleTimeout: '5m' }, pcapRing: { enabled: true, maxMb: 1024 }, healthPort: 9082, podAnnotations: { team: 'net' } } }],
    });
    const ds = only(objs, 'DaemonSet', '-capture');
    const spec = ds.spec.template.spec;
    const c = container(ds);
    const env = envMap(c);
    assertEnvMatchesCode(objs);
    const cfg = loadCaptureConfig(podEnv(c, { name: 'p', nodeName: 'n' }));
    assert.equal(cfg.captureInterface, 'eth0');
    assert.equal(cfg.captureFilter, 'not port 4222');
    assert.equal(cfg.captureBufferMb, 512);
    assert.equal(cfg.tcpIdleTimeoutMs, 300_000);
    assert.equal(cfg.healthPort, 9082);
    assert.equal(cfg.prometheusPort, values.telemetry.prometheus.port);
    assert.deepEqual(c.ports, [{ name: 'health', containerPort: 9082, protocol: 'TCP' }, { name: 'metrics', containerPort: values.telemetry.prometheus.port, protocol: 'TCP' }]);
    assert.deepEqual(ds.spec.template.metadata.annotations, {
      'prometheus.io/scrape': 'true', 'prometheus.io/port': String(values.telemetry.prometheus.port), 'prometheus.io/path': '/metrics', team: 'net',
    });
    assert.equal(spec.priorityClassName, 'wirescript-node');
    assert.equal(ds.spec.updateStrategy.rollingUpdate.maxUnavailable, '10%');

    // The ring: PCAP_RING_DIR is the mount of a volume; its defaults are the code's; the emptyDir holds the bound with room to spare.
    const mount = (c.volumeMounts as K8s[]).find((m) => m.name === 'pcap-ring');
    assert.equal(mount?.mountPath, values.capture.pcapRing.mountPath);
    assert.equal(cfg.pcapRingDir, mount!.mountPath);
    assert.equal(cfg.pcapRingMaxMb, 1024);
    assert.equal(cfg.pcapRingMaxFiles, loadCaptureConfig({}).pcapRingMaxFiles, 'pcapRing.maxFiles default differs from the code default');
    const withDefaults = loadCaptureConfig(podEnv(container(only(await render({ set: ['capture.pcapRing.enabled=true'] }), 'DaemonSet', '-capture')), { name: 'p', nodeName: 'n' }));
    assert.equal(withDefaults.pcapRingMaxMb, loadCaptureConfig({}).pcapRingMaxMb, 'pcapRing.maxMb default differs from the code default');
    const vol = (spec.volumes as K8s[]).find((v) => v.name === 'pcap-ring');
    assert.ok(vol?.emptyDir, 'an emptyDir by default');
    const sizeMi = mebibytes(vol.emptyDir.sizeLimit);
    assert.ok(sizeMi >= cfg.pcapRingMaxMb * 1.2 && sizeMi <= cfg.pcapRingMaxMb * 2, `emptyDir sizeLimit ${vol.emptyDir.sizeLimit} for a ${cfg.pcapRingMaxMb} MiB ring`);

    const hostPath = { hostPath: { path: '/var/lib/wirescript/pcap-ring', type: 'DirectoryOrCreate' } };
    const withHostPath = await render({ values: [{ capture: { pcapRing: { enabled: true, volume: hostPath } } }] });
    const hp = (only(withHostPath, 'DaemonSet', '-capture').spec.template.spec.volumes as K8s[]).find((v) => v.name === 'pcap-ring');
    assert.deepEqual(hp, { name: 'pcap-ring', ...hostPath });
  });

  test('capture.enabled=false removes the DaemonSet and nothing else', async () => {
    const withCapture = await render();
    const without = await render({ set: ['capture.enabled=false'] });
    assert.deepEqual(without.filter((o) => o.kind === 'DaemonSet'), []);
    const key = (o: K8s) => `${o.kind}/${o.metadata.name}`;
    assert.deepEqual(without.map(key), withCapture.filter((o) => o.kind !== 'DaemonSet').map(key));
    assert.doesNotMatch(await helmTemplate({ set: ['capture.enabled=false'] }), /capture/i);
  });

  test('capture misconfigurations fail the render with a message saying what to fix', async () => {
    await assert.rejects(
      render({ set: ['capture.drainTimeoutSeconds=30', 'capture.terminationGracePeriodSeconds=30'] }),
      /capture.terminationGracePeriodSeconds \(30\) must exceed capture.drainTimeoutSeconds \(30\)/,
    );
    await assert.rejects(render({ set: ['capture.drainTimeoutSeconds=0'] }), /capture.drainTimeoutSeconds must be at least 1/);
    await assert.rejects(render({ values: [{ capture: { securityContext: { capabilities: { add: ['NET_ADMIN'] } } } }] }), /capabilities.add must include NET_RAW/);
    await assert.rejects(render({ set: ['capture.healthPort=0'] }), /capture.healthPort must be a port/);
    // A grace period above DRAIN_TIMEOUT but set by hand is taken as given.
    const ds = only(await render({ set: ['capture.terminationGracePeriodSeconds=15'] }), 'DaemonSet', '-capture');
    assert.equal(ds.spec.template.spec.terminationGracePeriodSeconds, 15);
  });

  test('hub (defaults): one replica, Recreate, its own ServiceAccount with list/watch on pods cluster-wide, env = the code defaults', async () => {
    const objs = await render();
    const dep = only(objs, 'Deployment', '-hub');
    const spec = dep.spec.template.spec;
    const labels = dep.spec.template.metadata.labels;
    const c = container(dep, 'hub');
    const pod = { name: 'ws-wirescript-hub-5c7d9-x2k9p', nodeName: 'node-a' };

    // A singleton: one replica, never two at once, nothing that scales it or keeps a second one.
    assert.equal(dep.spec.replicas, 1);
    assert.deepEqual(dep.spec.strategy, { type: 'Recreate' });
    assert.ok(matches(dep.spec.selector.matchLabels, labels), 'Deployment selector matches its pod');
    for (const o of objs.filter((x) => x !== dep && x.spec?.selector)) {
      assert.ok(!matches(o.spec.selector.matchLabels ?? o.spec.selector, labels), `${o.kind} ${o.metadata.name} selects the hub pod (a PDB would block node drains)`);
    }
    assert.ok(!objs.some((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec.scaleTargetRef.name === dep.metadata.name));

    // Its own identity, with a token (the pod watch), no service links; the image user, nothing else.
    const sa = only(objs, 'ServiceAccount', '-hub');
    assert.equal(spec.serviceAccountName, sa.metadata.name);
    assert.equal(sa.automountServiceAccountToken, false, 'the ServiceAccount mounts nothing by default');
    assert.equal(spec.automountServiceAccountToken, true, 'the hub pod opts in to its token');
    assert.equal(spec.enableServiceLinks, false);
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.securityContext.runAsUser, dockerRuntime().uid);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
    assert.ok((c.volumeMounts as K8s[]).some((m) => m.name === 'tmp' && m.mountPath === '/tmp'));
    assert.deepEqual(c.args, ['hub']);
    assert.equal(c.command, undefined, 'the image ENTRYPOINT');
    assert.equal(c.image, container(only(objs, 'Deployment', '-script-runner')).image, 'one image for every service');

    // Env: what the hub reads, loaded by its own loader, equal to the code's defaults.
    const env = envMap(c);
    for (const name of HUB_ENV) assert.ok(env.has(name), `hub env ${name} missing`);
    assert.ok(!env.has('NODE_NAME'), 'the hub has no NODE_NAME: its node is always "hub"');
    assert.deepEqual(env.get('REPLICA_ID')!.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.equal(env.get('NATS_URL')!.value, envMap(container(only(objs, 'Deployment', '-script-runner'))).get('NATS_URL')!.value);
    assertEnvMatchesCode(objs);
    assertEnvIsCodeDefaults('hub', c, HUB_ENV_LEFT_OUT, SERVICE_LOADERS.hub);
    const cfg = loadConfig(hubConfig, podEnv(c, pod));
    assert.equal(cfg.podWatch, 'auto');
    assert.deepEqual(cfg.podNamespaces, []);
    assert.equal(cfg.replicaId, pod.name);
    // In the pod, Kubernetes adds KUBERNETES_SERVICE_HOST/PORT: POD_WATCH=auto then watches with the service account's token.
    const inPod = podWatchPlan(loadConfig(hubConfig, { ...podEnv(c, pod), KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }));
    assert.equal(inPod.watch, true);
    assert.match(inPod.watch ? inPod.source : '', /in-cluster service account/);
    assert.equal(podWatchPlan(cfg).watch, false, 'outside a cluster the same env leaves the pod watch off');

    // Probes on the port named health (HEALTH_PORT); grace period and memory.
    assert.deepEqual(c.ports, [{ name: 'health', containerPort: cfg.healthPort, protocol: 'TCP' }], 'only the health port without Prometheus');
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/livez', port: 'health' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'health' });
    assert.equal(dep.spec.template.metadata.annotations?.['prometheus.io/scrape'], undefined);
    assert.ok(spec.terminationGracePeriodSeconds * 1000 > cfg.drainTimeoutMs, 'terminationGracePeriodSeconds must exceed DRAIN_TIMEOUT');
    assert.ok(mebibytes(c.resources.limits.memory) >= 2 * cfg.memoryLimitMb, `memory limit ${c.resources.limits.memory} too close to SCRIPT_MEMORY_LIMIT_MB=${cfg.memoryLimitMb}`);

    // RBAC: list and watch on pods, everywhere, bound to the hub's ServiceAccount only: what the code requests.
    const cr = only(objs, 'ClusterRole');
    const crb = only(objs, 'ClusterRoleBinding');
    assert.equal(cr.metadata.name, 'ws-wirescript-hub-traffic');
    assert.deepEqual(cr.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] }]);
    assert.deepEqual(crb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: cr.metadata.name });
    assert.deepEqual(crb.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'traffic' }]);
    const grants = grantsOf(objs, { name: sa.metadata.name, namespace: 'traffic' });
    assert.deepEqual(grantedRights(grants), codeRights('hub'));
    const may = (method: string, p: string, query = '') => allows(grants, requestAttributes({ method, path: p, query })!);
    assert.ok(may('GET', '/api/v1/pods', 'limit=500'));
    assert.ok(may('GET', '/api/v1/pods', 'watch=true&resourceVersion=42&allowWatchBookmarks=true'));
    assert.ok(may('GET', '/api/v1/namespaces/shop/pods', 'watch=true'));
    assert.ok(!may('GET', '/api/v1/namespaces/shop/pods/web-1'), 'no get');
    assert.ok(!may('DELETE', '/api/v1/namespaces/shop/pods/web-1'), 'no writes');
    assert.ok(!may('GET', '/api/v1/secrets'), 'no secrets');
    for (const other of objs.filter((o) => o.kind === 'ServiceAccount' && o !== sa)) {
      assert.ok(!grantsOf(objs, { name: other.metadata.name, namespace: 'traffic' }).some((g) => (g.rule.resources as string[]).includes('pods')), `${other.metadata.name} may read pods`);
    }
  });

  test('hub.podNamespaces: POD_NAMESPACES and a Role + RoleBinding per namespace, no cluster-wide right; podWatch off: no RBAC, no token; your own ServiceAccount', async () => {
    const objs = await render({ values: [{ hub: { podNamespaces: ['shop', 'payments', 'shop'] } }] });
    const c = container(only(objs, 'Deployment', '-hub'));
    assert.equal(envMap(c).get('POD_NAMESPACES')!.value, 'shop,payments');
    assertEnvMatchesCode(objs);
    assert.deepEqual(loadConfig(hubConfig, podEnv(c, { name: 'p', nodeName: 'n' })).podNamespaces, ['shop', 'payments']);
    assert.ok(!objs.some((o) => CLUSTER_SCOPED.has(o.kind)), 'no cluster-wide rights when the namespaces are listed');
    const roles = objs.filter((o) => o.kind === 'Role' && o.metadata.name.endsWith('-hub'));
    assert.deepEqual(roles.map((r) => r.metadata.namespace).sort(), ['payments', 'shop']);
    for (const r of roles) assert.deepEqual(r.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] }]);
    const bindings = objs.filter((o) => o.kind === 'RoleBinding' && o.metadata.name.endsWith('-hub'));
    assert.deepEqual(bindings.map((r) => r.metadata.namespace).sort(), ['payments', 'shop']);
    const grants = grantsOf(objs, { name: 'ws-wirescript-hub', namespace: 'traffic' });
    assert.deepEqual(grantedRights(grants), codeRights('hub'));
    const may = (p: string, query = '') => allows(grants, requestAttributes({ method: 'GET', path: p, query })!);
    assert.ok(may('/api/v1/namespaces/shop/pods') && may('/api/v1/namespaces/payments/pods', 'watch=true'));
    assert.ok(!may('/api/v1/namespaces/kube-system/pods'), 'pods of an unlisted namespace');
    assert.ok(!may('/api/v1/pods'), 'pods of every namespace');

    // Pod watch off: no RBAC and no token; the hub still runs actions and jobs.
    const off = await render({ set: ['hub.config.podWatch=off'] });
    const offSpec = only(off, 'Deployment', '-hub').spec.template.spec;
    assert.equal(offSpec.automountServiceAccountToken, false);
    assert.equal(envMap(offSpec.containers[0]).get('POD_WATCH')!.value, 'off');
    assert.deepEqual(grantsOf(off, { name: 'ws-wirescript-hub', namespace: 'traffic' }), []);
    assert.ok(!off.some((o) => CLUSTER_SCOPED.has(o.kind)));
    assertEnvMatchesCode(off);

    // RBAC left to you: the ServiceAccount stays, no role; your own ServiceAccount: bound as is.
    const noRbac = await render({ set: ['hub.rbac.create=false'] });
    assert.ok(!noRbac.some((o) => CLUSTER_SCOPED.has(o.kind)));
    assert.equal(only(noRbac, 'ServiceAccount', '-hub').metadata.name, 'ws-wirescript-hub');
    assert.equal(only(noRbac, 'Deployment', '-hub').spec.template.spec.automountServiceAccountToken, true);
    const own = await render({ set: ['hub.serviceAccount.create=false', 'hub.serviceAccount.name=pod-reader'] });
    assert.ok(!own.some((o) => o.kind === 'ServiceAccount' && o.metadata.name.endsWith('-hub')));
    assert.equal(only(own, 'Deployment', '-hub').spec.template.spec.serviceAccountName, 'pod-reader');
    assert.deepEqual(only(own, 'ClusterRoleBinding').subjects, [{ kind: 'ServiceAccount', name: 'pod-reader', namespace: 'traffic' }]);
    const annotated = await render({ values: [{ hub: { serviceAccount: { annotations: { 'iam.example.com/role': 'hub' } } } }] });
    assert.deepEqual(only(annotated, 'ServiceAccount', '-hub').metadata.annotations, { 'iam.example.com/role': 'hub' });
  });

  test('config-sync (defaults): one replica, Recreate, its own ServiceAccount, a Role on exactly the ConfigMap and the Secret, env = the code defaults', async () => {
    const objs = await render();
    const dep = only(objs, 'Deployment', '-config-sync');
    const spec = dep.spec.template.spec;
    const labels = dep.spec.template.metadata.labels;
    const c = container(dep, 'config-sync');
    assert.equal(dep.spec.replicas, 1);
    assert.deepEqual(dep.spec.strategy, { type: 'Recreate' });
    assert.ok(matches(dep.spec.selector.matchLabels, labels));
    for (const o of objs.filter((x) => x !== dep && x.spec?.selector)) {
      assert.ok(!matches(o.spec.selector.matchLabels ?? o.spec.selector, labels), `${o.kind} ${o.metadata.name} selects the config-sync pod`);
    }
    const sa = only(objs, 'ServiceAccount', '-config-sync');
    assert.equal(spec.serviceAccountName, sa.metadata.name);
    assert.equal(sa.automountServiceAccountToken, false);
    assert.equal(spec.automountServiceAccountToken, true, 'config-sync reads the ConfigMap with its token');
    assert.equal(spec.enableServiceLinks, false);
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.securityContext.runAsUser, dockerRuntime().uid);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
    assert.deepEqual(c.args, ['config-sync']);

    const env = envMap(c);
    for (const name of CONFIG_SYNC_ENV) assert.ok(env.has(name), `config-sync env ${name} missing`);
    assertEnvMatchesCode(objs);
    assertEnvIsCodeDefaults('config-sync', c, CONFIG_SYNC_ENV_LEFT_OUT, SERVICE_LOADERS['config-sync']);
    const cfg = loadConfig(configSyncConfig, podEnv(c, { name: 'ws-wirescript-config-sync-6b8f-q2w3e', nodeName: 'node-a' }));
    assert.equal(cfg.configMapName, values.scripting.configMapName);
    assert.equal(cfg.secretName, values.scripting.secretName);
    assert.equal(cfg.namespace, 'traffic', 'the ConfigMap and the Secret are read in the release namespace');
    assert.equal(cfg.scriptsDir, undefined, 'Kubernetes, not a folder');
    assert.deepEqual(c.ports, [{ name: 'health', containerPort: cfg.healthPort, protocol: 'TCP' }]);
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/livez', port: 'health' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'health' });
    assert.ok(spec.terminationGracePeriodSeconds * 1000 > cfg.drainTimeoutMs, 'terminationGracePeriodSeconds must exceed DRAIN_TIMEOUT');

    // RBAC: list and watch, restricted to the two objects by resourceNames, in the release namespace.
    const role = only(objs, 'Role', '-config-sync');
    assert.equal(role.metadata.namespace, 'traffic');
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['configmaps'], resourceNames: [cfg.configMapName], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: [cfg.secretName], verbs: ['list', 'watch'] },
    ]);
    const rb = only(objs, 'RoleBinding', '-config-sync');
    assert.deepEqual(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'traffic' }]);
    const grants = grantsOf(objs, { name: sa.metadata.name, namespace: 'traffic' });
    assert.deepEqual(grantedRights(grants), codeRights('config-sync'));
    const may = (method: string, p: string, query = '') => allows(grants, requestAttributes({ method, path: p, query })!);
    const cms = '/api/v1/namespaces/traffic/configmaps';
    const secrets = '/api/v1/namespaces/traffic/secrets';
    assert.ok(may('GET', cms, 'fieldSelector=metadata.name%3Dkubeshark-config-map'));
    assert.ok(may('GET', cms, 'fieldSelector=metadata.name%3Dkubeshark-config-map&watch=true&resourceVersion=7'));
    assert.ok(may('GET', secrets, 'watch=1&fieldSelector=metadata.name%3D%3Dkubeshark-secret'));
    assert.ok(!may('GET', cms), 'every ConfigMap of the namespace');
    assert.ok(!may('GET', secrets, 'watch=true'), 'every Secret of the namespace');
    assert.ok(!may('GET', secrets, 'fieldSelector=metadata.name%3Ddb-password'), 'another Secret');
    assert.ok(!may('GET', '/api/v1/namespaces/kube-system/configmaps', 'fieldSelector=metadata.name%3Dkubeshark-config-map'), 'another namespace');
    assert.ok(!may('GET', `${cms}/kubeshark-config-map`), 'get is not what config-sync requests');
    assert.ok(!may('PUT', `${cms}/kubeshark-config-map`), 'no writes');
    assert.ok(!objs.some((o) => o.kind === 'ClusterRoleBinding' && (o.subjects as K8s[]).some((s) => s.name === sa.metadata.name)));

    // The storage: an empty Kubeshark ConfigMap, kept on uninstall; no Secret unless scripting.env is set.
    const cm = only(objs, 'ConfigMap', values.scripting.configMapName);
    assert.equal(cm.metadata.name, cfg.configMapName);
    assert.equal(cm.metadata.annotations['helm.sh/resource-policy'], 'keep');
    assert.deepEqual(cm.data, { [SCRIPTS_KEY]: '{}', [ACTIVE_SCRIPTS_KEY]: '' });
    assert.deepEqual(parseStoredScripts(cm.data[SCRIPTS_KEY], cm.data[ACTIVE_SCRIPTS_KEY]), { scripts: [], problems: [] });
    assert.ok(!objs.some((o) => o.kind === 'Secret'), 'no Secret without scripting.env');
  });

  test('scripting: other names, no ConfigMap, the env as the Secret config-sync reads (SCRIPTING_ENV)', async () => {
    const objs = await render({
      values: [{ scripting: { configMapName: 'team-scripts', secretName: 'team-env', createConfigMap: false, env: { SLACK_WEBHOOK: 'https://hooks.example.com/T0/B0', RETRIES: 3, BIG: 12345678 } } }],
    });
    assert.ok(!objs.some((o) => o.kind === 'ConfigMap' && !o.metadata.name.endsWith('-nats-config')), 'createConfigMap=false: no scripting ConfigMap');
    const secret = only(objs, 'Secret', 'team-env');
    assert.equal(secret.metadata.name, 'team-env');
    assert.equal(secret.type, 'Opaque');
    assert.equal(secret.metadata.annotations?.['helm.sh/resource-policy'], undefined, 'the Secret follows the values');
    assert.deepEqual(Object.keys(secret.data), [ENV_KEY]);
    assert.deepEqual(parseScriptingEnv(secretValue(secret.data, ENV_KEY)), { SLACK_WEBHOOK: 'https://hooks.example.com/T0/B0', RETRIES: '3', BIG: '12345678' });
    const cfg = loadConfig(configSyncConfig, podEnv(container(only(objs, 'Deployment', '-config-sync')), { name: 'p', nodeName: 'n' }));
    assert.equal(cfg.configMapName, 'team-scripts');
    assert.equal(cfg.secretName, 'team-env');
    assert.deepEqual((only(objs, 'Role', '-config-sync').rules as K8s[]).map((r) => r.resourceNames), [['team-scripts'], ['team-env']]);
    assertEnvMatchesCode(objs);
  });

  test('the scripting ConfigMap is never overwritten: rendered against a cluster (lookup) it carries what is there, one the release does not own is left alone', async (t) => {
    const kube = await startKubeApiServer();
    t.after(() => kube.close());
    const dir = await mkdtemp(path.join(os.tmpdir(), 'wirescript-chart-lookup-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const cluster = await clusterForHelm(kube, dir);
    t.after(() => cluster.close());
    const name = values.scripting.configMapName as string;
    const scriptingCm = (objs: K8s[]) => objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.name === name);

    // Not there yet: created empty (and helm did look).
    const fresh = scriptingCm(await render({ kubeconfig: cluster.kubeconfig }));
    assert.equal(fresh.length, 1);
    assert.deepEqual(fresh[0].data, { [SCRIPTS_KEY]: '{}', [ACTIVE_SCRIPTS_KEY]: '' });
    assert.ok(kube.requests.some((r) => r.method === 'GET' && r.path === `/api/v1/namespaces/traffic/configmaps/${name}`), 'helm looked the ConfigMap up');

    // Ours, with scripts written since (by `wirescript scripts`): an upgrade renders them unchanged.
    const scripts = { 0: { title: 'errors', code: '// errors\nfunction onItemCaptured(d) {}', active: true } };
    const live = {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: {
        name, namespace: 'traffic', labels: { 'app.kubernetes.io/managed-by': 'Helm' },
        annotations: { 'meta.helm.sh/release-name': 'ws', 'meta.helm.sh/release-namespace': 'traffic', 'wirescript.io/script-files': '{"0":"/src/errors.js"}' },
      },
      data: { [SCRIPTS_KEY]: JSON.stringify(scripts), [ACTIVE_SCRIPTS_KEY]: 'errors' },
    };
    kube.put(live);
    const upgraded = scriptingCm(await render({ kubeconfig: cluster.kubeconfig }));
    assert.equal(upgraded.length, 1);
    assert.deepEqual(upgraded[0].data, live.data, 'the scripts in the cluster are what the chart applies');
    assert.equal(upgraded[0].metadata.annotations['helm.sh/resource-policy'], 'keep');

    // Someone else's (Kubeshark's own, or another release's): not rendered, so neither adopted nor overwritten; config-sync still reads it.
    for (const annotations of [{}, { 'meta.helm.sh/release-name': 'other', 'meta.helm.sh/release-namespace': 'traffic' }]) {
      kube.put({ ...live, metadata: { name, namespace: 'traffic', annotations } });
      const objs = await render({ kubeconfig: cluster.kubeconfig });
      assert.deepEqual(scriptingCm(objs), [], `a ConfigMap owned by ${JSON.stringify(annotations)} is rendered`);
      assert.deepEqual(only(objs, 'Role', '-config-sync').rules[0].resourceNames, [name]);
    }
  });

  test('Prometheus on: the hub and config-sync get PROMETHEUS_PORT, a metrics port and the scrape annotations', async () => {
    const objs = await render({ set: ['telemetry.prometheus.enabled=true'], values: [{ hub: { podAnnotations: { team: 'net' } } }] });
    for (const [suffix, service] of [['-hub', 'hub'], ['-config-sync', 'config-sync']] as const) {
      const dep = only(objs, 'Deployment', suffix);
      const c = container(dep);
      const cfg = SERVICE_LOADERS[service](podEnv(c, { name: 'p', nodeName: 'n' })) as K8s;
      assert.equal(cfg.prometheusPort, values.telemetry.prometheus.port);
      assert.deepEqual(c.ports, [
        { name: 'health', containerPort: cfg.healthPort, protocol: 'TCP' },
        { name: 'metrics', containerPort: values.telemetry.prometheus.port, protocol: 'TCP' },
      ]);
      assert.deepEqual(dep.spec.template.metadata.annotations, {
        'prometheus.io/scrape': 'true', 'prometheus.io/port': String(values.telemetry.prometheus.port), 'prometheus.io/path': '/metrics',
        ...(service === 'hub' ? { team: 'net' } : {}),
      });
    }
    assertEnvMatchesCode(objs);
  });

  test('hub and config-sync settings follow the values; pass-through values land where they belong', async () => {
    const objs = await render({
      values: [{
        imagePullSecrets: [{ name: 'regcred' }],
        hub: { config: { actionAckWait: '2m', podEventQueueCapacity: 10_000_000, podMap: false }, drainTimeoutSeconds: 40, nodeSelector: { pool: 'system' }, priorityClassName: 'wirescript', extraEnv: [{ name: 'HEALTH_HOST', value: '0.0.0.0' }] },
        configSync: { config: { syncDebounce: '1s', maxScriptBytes: 2_097_152 }, terminationGracePeriodSeconds: 60, tolerations: [{ key: 'k', operator: 'Exists' }], podLabels: { team: 'net' } },
      }],
    });
    const hub = only(objs, 'Deployment', '-hub');
    const hubCfg = loadConfig(hubConfig, podEnv(container(hub), { name: 'p', nodeName: 'n' }));
    assert.equal(hubCfg.actionAckWaitMs, 120_000);
    assert.equal(hubCfg.podEventQueueCapacity, 10_000_000);
    assert.equal(hubCfg.podMap, false);
    assert.equal(hubCfg.drainTimeoutMs, 40_000);
    assert.equal(hub.spec.template.spec.terminationGracePeriodSeconds, 60);
    assert.deepEqual(hub.spec.template.spec.nodeSelector, { pool: 'system' });
    assert.equal(hub.spec.template.spec.priorityClassName, 'wirescript');
    assert.deepEqual(hub.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
    assert.equal(hubCfg.healthHost, '0.0.0.0');
    const sync = only(objs, 'Deployment', '-config-sync');
    const syncCfg = loadConfig(configSyncConfig, podEnv(container(sync), { name: 'p', nodeName: 'n' }));
    assert.equal(syncCfg.syncDebounceMs, 1_000);
    assert.equal(syncCfg.maxScriptBytes, 2_097_152);
    assert.equal(sync.spec.template.spec.terminationGracePeriodSeconds, 60);
    assert.deepEqual(sync.spec.template.spec.tolerations, [{ key: 'k', operator: 'Exists' }]);
    assert.equal(sync.spec.template.metadata.labels.team, 'net');
    assert.deepEqual(sync.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
    assertEnvMatchesCode(objs);
  });

  test('hub.enabled=false and configSync.enabled=false remove their objects and nothing else', async () => {
    const key = (o: K8s) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    const component = (o: K8s) => o.metadata.labels['app.kubernetes.io/component'];
    const all = await render({ values: [{ scripting: { env: { A: 'b' } } }] });
    for (const [switchOff, name] of [['hub.enabled=false', 'hub'], ['configSync.enabled=false', 'config-sync']]) {
      const without = await render({ set: [switchOff], values: [{ scripting: { env: { A: 'b' } } }] });
      const removed = all.filter((o) => component(o) === name);
      assert.ok(removed.length >= 4, `${name}: Deployment, ServiceAccount and RBAC at least`);
      assert.deepEqual(without.map(key), all.filter((o) => component(o) !== name).map(key), `${switchOff} removes exactly the ${name} objects`);
    }
    const noHub = await render({ set: ['hub.enabled=false'] });
    assert.ok(!noHub.some((o) => CLUSTER_SCOPED.has(o.kind)), 'without the hub the chart asks for no cluster-wide right');
    const noSync = await render({ set: ['configSync.enabled=false'], values: [{ scripting: { env: { A: 'b' } } }] });
    assert.ok(!noSync.some((o) => o.kind === 'Secret' || (o.kind === 'ConfigMap' && o.metadata.name === values.scripting.configMapName)), 'the storage goes with config-sync');
  });

  test('hub and config-sync misconfigurations fail the render with a message saying what to fix', async () => {
    await assert.rejects(render({ set: ['hub.drainTimeoutSeconds=30', 'hub.terminationGracePeriodSeconds=30'] }), /hub.terminationGracePeriodSeconds \(30\) must exceed hub.drainTimeoutSeconds \(30\)/);
    await assert.rejects(render({ set: ['configSync.drainTimeoutSeconds=0'] }), /configSync.drainTimeoutSeconds must be at least 1/);
    await assert.rejects(render({ set: ['hub.serviceAccount.create=false'] }), /set hub.serviceAccount.name/);
    await assert.rejects(render({ set: ['configSync.serviceAccount.create=false'] }), /set configSync.serviceAccount.name/);
    await assert.rejects(render({ set: ['hub.config.podWatch=sometimes'] }), /hub.config.podWatch must be auto, on or off/);
    await assert.rejects(render({ values: [{ hub: { podNamespaces: ['Shop_1'] } }] }), /hub.podNamespaces: "Shop_1" is not a namespace name/);
    await assert.rejects(render({ set: ['scripting.configMapName='] }), /scripting.configMapName must be the name of a Kubernetes object/);
    await assert.rejects(render({ set: ['scripting.secretName=Bad Name'] }), /scripting.secretName must be the name of a Kubernetes object/);
    await assert.rejects(render({ set: ['scripting.env=token'] }), /scripting.env must be a map/);
    // A grace period above DRAIN_TIMEOUT set by hand is taken as given.
    assert.equal(only(await render({ set: ['hub.terminationGracePeriodSeconds=11'] }), 'Deployment', '-hub').spec.template.spec.terminationGracePeriodSeconds, 11);
  });
});

// ---------------------------------------------------------------------------
// Starting capture the way its pod starts it

const execFileP = promisify(execFile);

/** An executable on the PATH, or in the sbin folders (setcap, setpriv) that a user's PATH may lack. */
function findTool(bin: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    const p = path.join(dir, bin);
    try {
      const st = statSync(p);
      if (st.isFile() && st.mode & 0o111) return p;
    } catch {
      // not there
    }
  }
  return null;
}

/** Bits of the capabilities the chart deals with (linux/capability.h). */
const CAP_BIT: Record<string, bigint> = { NET_ADMIN: 12n, NET_RAW: 13n };

function capMask(names: string[]): bigint {
  return names.reduce((m, n) => {
    assert.ok(n in CAP_BIT, `capability ${n}: add its bit to CAP_BIT`);
    return m | (1n << CAP_BIT[n]);
  }, 0n);
}

/** /proc/<pid>/status as key -> value. */
function procStatus(pid: number | 'self'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** Whether a user other than the owner can reach `p` (every folder on the way searchable by others). */
function othersCanReach(p: string): boolean {
  for (let cur = path.resolve(p); ; cur = path.dirname(cur)) {
    if (!(statSync(cur).mode & 0o001)) return false;
    if (path.dirname(cur) === cur) return true;
  }
}

interface CaptureLaunch {
  /** How, in words (a test diagnostic). */
  how: string;
  argv: string[];
  /** PATH of the child: where `node` is found. */
  path: string;
  /** What /proc/<pid>/status must show once it runs (pod emulation only). */
  expect?: { uid: number; caps: bigint };
}

/**
 * How to start the capture container's command here. As root with gcc,
 * setcap and setpriv: the pod's way, emulated with the kernel's own rules —
 * netcap-exec compiled from the repository with the Dockerfile's gcc flags and
 * given the Dockerfile's file capabilities, run by setpriv with the pod's UID
 * and GID, a bounding set of the container's added capabilities, an empty
 * inheritable set and no_new_privs when allowPrivilegeEscalation is false, as
 * runc does. Otherwise, when this process has CAP_NET_RAW itself: node
 * directly. Otherwise a reason to skip.
 */
async function captureLaunch(c: K8s, podSpec: K8s, dir: string): Promise<CaptureLaunch | string> {
  if (process.platform !== 'linux') return `live capture is tested on Linux only (this is ${process.platform})`;
  const entry = (c.command as string[]).slice(1); // the image ENTRYPOINT: node bin/wirescript.ts
  assert.equal(entry[0], 'node');
  const direct: CaptureLaunch = {
    how: 'directly as this user (which has CAP_NET_RAW); run as root with gcc, setcap and setpriv to test the pod way',
    argv: [process.execPath, ...entry.slice(1), ...(c.args as string[])],
    path: process.env.PATH ?? '',
  };
  const hasNetRaw = (BigInt(`0x${procStatus('self').CapEff}`) & capMask(['NET_RAW'])) !== 0n;
  const tools = { gcc: findTool('gcc') ?? findTool('cc'), setcap: findTool('setcap'), setpriv: findTool('setpriv') };
  const missing = Object.entries(tools).filter(([, v]) => !v).map(([k]) => k);
  const why = process.getuid?.() !== 0 ? 'not root' : missing.length ? `no ${missing.join(', ')}` : !othersCanReach(REPO_ROOT) ? `${REPO_ROOT} is not readable by other users` : '';
  if (why) return hasNetRaw ? { ...direct, how: `${direct.how} (${why})` } : `cannot open packet sockets here (${why}, and no CAP_NET_RAW)`;

  const img = netcapImage();
  const wrapper = path.join(dir, 'netcap-exec');
  await execFileP(tools.gcc!, [...img.gccFlags, '-o', wrapper, img.source]);
  try {
    await execFileP(tools.setcap!, [`${img.capsText}=${img.capFlags}`, wrapper]);
  } catch (err) {
    const reason = `setcap failed on ${dir} (${(err as Error).message.trim()})`;
    return hasNetRaw ? { ...direct, how: `${direct.how} (${reason})` } : reason;
  }
  // node where UID 1000 can run it (a hard link when possible: no 100 MB copy).
  const node = path.join(dir, 'node');
  await link(process.execPath, node).catch(async () => {
    await copyFile(process.execPath, node);
    await chmod(node, 0o755);
  });
  await chmod(dir, 0o755);
  const sc = c.securityContext as K8s;
  const psc = podSpec.securityContext as K8s;
  const added = (sc.capabilities.add as string[]).map((x) => x.replace(/^CAP_/, ''));
  return {
    how: `as the pod runs it: UID ${psc.runAsUser}, capabilities {${added.join(', ')}} in the bounding set only${sc.allowPrivilegeEscalation === false ? ', no_new_privs' : ''}, through netcap-exec built with the Dockerfile's flags and file capabilities (${img.capsText}=${img.capFlags})`,
    argv: [
      tools.setpriv!, `--reuid=${psc.runAsUser}`, `--regid=${psc.runAsGroup}`, '--clear-groups',
      `--bounding-set=-all${added.map((x) => `,+${x.toLowerCase()}`).join('')}`, '--inh-caps=-all',
      ...(sc.allowPrivilegeEscalation === false ? ['--no-new-privs'] : []),
      wrapper, ...entry, ...(c.args as string[]),
    ],
    path: `${dir}${path.delimiter}${process.env.PATH ?? ''}`,
    expect: { uid: psc.runAsUser, caps: capMask(added.filter((x) => img.caps.includes(x))) },
  };
}

describe('rendered config runs for real', () => {
  const tmpDirs: string[] = [];
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([gone, sleep(5_000, undefined, { ref: false })]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
  });

  test('the bundled NATS config starts nats-server with JetStream, and the runner env runs the script-runner', async (t) => {
    let natsBin: string;
    try {
      natsBin = findNatsServer();
    } catch (err) {
      t.skip(`nats-server not installed: ${(err as Error).message}`);
      return;
    }
    const objs = await render({ set: ['telemetry.prometheus.enabled=true'] });
    const cm = only(objs, 'ConfigMap', '-nats-config');
    const dep = only(objs, 'Deployment', '-script-runner');
    const c = container(dep);

    // nats-server with the rendered config; only the ports and the store dir moved to local ones.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'wirescript-chart-'));
    tmpDirs.push(dir);
    const [clientPort, monitorPort, metricsPort, healthPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    let conf = String(cm.data['nats.conf']);
    const swap = (re: RegExp, to: string) => {
      assert.match(conf, re);
      conf = conf.replace(re, to);
    };
    swap(/^listen: .*$/m, `listen: 127.0.0.1:${clientPort}`);
    swap(/^http: .*$/m, `http: 127.0.0.1:${monitorPort}`);
    swap(/store_dir: \/data/, `store_dir: ${JSON.stringify(path.join(dir, 'js'))}`);
    const confFile = path.join(dir, 'nats.conf');
    await writeFile(confFile, conf);
    const nats = spawn(natsBin, ['--config', confFile], { env: { ...process.env, SERVER_NAME: 'ws-wirescript-nats-0' }, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(nats);
    let natsLog = '';
    nats.stderr.on('data', (d: Buffer) => (natsLog += d.toString()));
    const healthz = `http://127.0.0.1:${monitorPort}/healthz`;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await fetch(healthz).then((r) => r.ok, () => false);
      if (ok) break;
      assert.ok(Date.now() < deadline && nats.exitCode === null, `nats-server did not come up with the rendered config:\n${natsLog}`);
      await sleep(100);
    }
    const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as K8s;
    assert.equal(varz.server_name, 'ws-wirescript-nats-0');
    assert.ok(varz.jetstream?.config, 'JetStream is on');
    assert.equal(varz.max_payload, 8 * 1024 * 1024);

    // The runner with the Deployment's env (as the kubelet would fill it), pointed at the local server.
    const natsUrl = `nats://127.0.0.1:${clientPort}`;
    const nc = await connectNats({ url: natsUrl, name: 'chart-test', log: () => {} });
    t.after(() => drainAndClose(nc));
    await putScriptSet(nc, [{ code: '// chart smoke\nfunction onItemCaptured(d) {}' }]);
    const pod = { name: 'ws-wirescript-script-runner-7d9f-abcde', nodeName: 'node-a' };
    const env: Record<string, string> = { ...podEnv(c, pod), NATS_URL: natsUrl, PROMETHEUS_PORT: String(metricsPort), HEALTH_PORT: String(healthPort), STATUS_INTERVAL: '100ms' };
    const statuses: ReplicaStatus[] = [];
    nc.subscribe(statusSubject('script-runner', pod.name), { callback: (e, m) => { if (!e) statuses.push(decodeMessage(ReplicaStatus, m.data)); } });
    const [cmd, ...args] = ['node', 'bin/wirescript.ts', ...(c.args as string[])]; // the image's ENTRYPOINT + the container args
    assert.equal(cmd, 'node');
    const runner = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(runner);
    let runnerLog = '';
    runner.stderr.on('data', (d: Buffer) => (runnerLog += d.toString()));
    const exited = new Promise<number | null>((r) => runner.on('exit', (code) => r(code)));
    const until = Date.now() + 20_000;
    while (statuses.length === 0) {
      assert.ok(Date.now() < until && runner.exitCode === null, `no status from the runner (replica ${pod.name}):\n${runnerLog}`);
      await sleep(50);
    }
    assert.match(runnerLog, new RegExp(`node ${pod.nodeName}, replica ${pod.name}`));
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /wirescript_/);
    // The probes' endpoints answer on the port the chart names "health".
    for (const [probe, route] of [['livenessProbe', '/livez'], ['readinessProbe', '/readyz']] as const) {
      assert.equal(c[probe].httpGet.path, route);
      const res = await fetch(`http://127.0.0.1:${healthPort}${route}`);
      assert.equal(res.status, 200, `${route}: ${await res.text()}`);
    }

    // SIGTERM drains and exits 0 well inside terminationGracePeriodSeconds.
    const grace = dep.spec.template.spec.terminationGracePeriodSeconds as number;
    const t0 = Date.now();
    runner.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(grace * 1000, 'timeout', { ref: false })]);
    assert.equal(code, 0, `runner exit after SIGTERM (${runnerLog})`);
    assert.ok(Date.now() - t0 < parseDuration(env.DRAIN_TIMEOUT) + 5_000);
  });

  /**
   * A wirescript Deployment's container started here as its pod starts it (the
   * image's ENTRYPOINT + the container args, from the repository root, the
   * image's WORKDIR) with the rendered env as the kubelet fills it, plus
   * `override` (local NATS, free ports, a kubeconfig for the test API server
   * in place of the in-cluster service account).
   */
  async function startService(dep: K8s, pod: { name: string; nodeName: string }, override: Record<string, string>) {
    const c = container(dep);
    assert.equal(c.command, undefined, 'the image ENTRYPOINT (node bin/wirescript.ts)');
    const env = { ...podEnv(c, pod), ...override };
    const proc = spawn(process.execPath, ['bin/wirescript.ts', ...(c.args as string[])], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(proc);
    let log = '';
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const healthPort = Number(env.HEALTH_PORT);
    return {
      c, env, proc, log: () => log,
      /** Polls /readyz until 200; then /livez and /readyz answer 200 on the port the probes name. */
      async ready(timeoutMs = 20_000) {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then(async (r) => ({ status: r.status, text: await r.text() }), () => ({ status: 0, text: '' }));
          if (res.status === 200) break;
          assert.ok(Date.now() < until && proc.exitCode === null, `${c.name} never became ready (/readyz ${res.status} ${res.text}):\n${log}`);
          await sleep(100);
        }
        for (const [probe, route] of [['livenessProbe', '/livez'], ['readinessProbe', '/readyz']] as const) {
          assert.equal(c[probe].httpGet.path, route);
          assert.equal(c[probe].httpGet.port, 'health');
          const res = await fetch(`http://127.0.0.1:${healthPort}${route}`);
          assert.equal(res.status, 200, `${route}: ${await res.text()}`);
        }
      },
      /** SIGTERM: exits 0 within the pod's grace period (and, by far, within DRAIN_TIMEOUT). */
      async terminate() {
        const grace = dep.spec.template.spec.terminationGracePeriodSeconds as number;
        const t0 = Date.now();
        proc.kill('SIGTERM');
        const code = await Promise.race([exited, sleep(grace * 1000, 'timeout', { ref: false })]);
        assert.equal(code, 0, `${c.name} exit after SIGTERM:\n${log}`);
        assert.ok(Date.now() - t0 < parseDuration(env.DRAIN_TIMEOUT) + 5_000);
      },
    };
  }

  /** nats-server, the test Kubernetes API server and a kubeconfig file for it; null (test skipped) without nats-server. */
  async function localCluster(t: { skip(msg: string): void; after(fn: () => unknown): void }) {
    try {
      findNatsServer();
    } catch (err) {
      t.skip(`nats-server not installed: ${(err as Error).message}`);
      return null;
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'wirescript-chart-kube-'));
    tmpDirs.push(dir);
    const [nats, kube] = await Promise.all([startNatsServer(), startKubeApiServer()]);
    const nc = await connectNats({ url: nats.url, name: 'chart-test-kube', log: () => {} });
    t.after(async () => {
      await drainAndClose(nc);
      await kube.close();
      await nats.stop();
    });
    const kubeconfig = path.join(dir, 'kubeconfig.yaml');
    await writeFile(kubeconfig, kube.kubeconfigYaml());
    const [healthPort, metricsPort] = [await freePort(), await freePort()];
    return { nats, nc, kube, kubeconfig, healthPort, metricsPort };
  }

  for (const scope of ['every namespace', 'hub.podNamespaces'] as const) {
    test(`the hub env runs the hub (${scope}): its pod watch uses exactly the rights the chart grants, pod events flow, /readyz 200, SIGTERM exits 0`, async (t) => {
      const env = await localCluster(t);
      if (!env) return;
      const { nc, kube } = env;
      const objs = await render({ set: ['telemetry.prometheus.enabled=true'], values: scope === 'every namespace' ? [] : [{ hub: { podNamespaces: ['shop'] } }] });
      const dep = only(objs, 'Deployment', '-hub');
      kube.put(podObj('shop', 'web-1', '10.1.0.1'));
      kube.put(podObj('traffic', 'ws-wirescript-script-runner-0', '10.1.0.2'));
      await putScriptSet(nc, [{ code: '// chart hub\nfunction onPodEvent(e, p) {}' }]);
      const events: string[] = [];
      nc.subscribe(PODS_WILDCARD, { callback: (e, m) => { if (!e) { const ev = decodeMessage(PodEvent, m.data); events.push(`${ev.event} ${ev.namespace}/${ev.name}`); } } });
      const statuses: ReplicaStatus[] = [];
      const pod = { name: 'ws-wirescript-hub-5c7d9-x2k9p', nodeName: 'node-a' };
      nc.subscribe(statusSubject('hub', pod.name), { callback: (e, m) => { if (!e) statuses.push(decodeMessage(ReplicaStatus, m.data)); } });
      await nc.flush();

      const hub = await startService(dep, pod, {
        NATS_URL: env.nats.url, HEALTH_PORT: String(env.healthPort), PROMETHEUS_PORT: String(env.metricsPort), STATUS_INTERVAL: '100ms',
        // In the pod: KUBERNETES_SERVICE_HOST and the token; here: the test API server.
        KUBECONFIG: env.kubeconfig,
      });
      assert.equal(hub.env.POD_WATCH, 'auto');
      await hub.ready(); // the first pod list is in
      const expected = scope === 'every namespace' ? ['ADDED shop/web-1', 'ADDED traffic/ws-wirescript-script-runner-0'] : ['ADDED shop/web-1'];
      const until = Date.now() + 10_000;
      while (events.length < expected.length || statuses.length === 0) {
        assert.ok(Date.now() < until && hub.proc.exitCode === null, `pod events ${JSON.stringify(events)}, ${statuses.length} statuses:\n${hub.log()}`);
        await sleep(50);
      }
      await sleep(200);
      assert.deepEqual(events.sort(), expected);
      assert.equal(statuses[0].service, 'hub');
      assert.equal(statuses[0].node, 'hub');
      assert.equal((await fetch(`http://127.0.0.1:${env.metricsPort}/metrics`)).status, 200);

      // Every request the hub made is allowed by the rendered RBAC, and every granted right was used.
      const sa = { name: dep.spec.template.spec.serviceAccountName, namespace: 'traffic' };
      assert.deepEqual(assertRbacIsExactlyWhatIsRequested(objs, sa, kube.requests), codeRights('hub'));
      const paths = new Set(kube.requests.filter((r) => requestAttributes(r)).map((r) => r.path));
      assert.deepEqual([...paths], scope === 'every namespace' ? ['/api/v1/pods'] : ['/api/v1/namespaces/shop/pods']);

      await hub.terminate();
    });
  }

  test('the config-sync env runs config-sync: the chart\'s ConfigMap and Secret reach KV ws_scripts, with exactly the rights the chart grants, /readyz 200, SIGTERM exits 0', async (t) => {
    const env = await localCluster(t);
    if (!env) return;
    const { nc, kube } = env;
    const SECRET = 'xoxb-chart-test-never-logged';
    const objs = await render({ set: ['telemetry.prometheus.enabled=true'], values: [{ scripting: { env: { SLACK_TOKEN: SECRET } } }] });
    const dep = only(objs, 'Deployment', '-config-sync');
    // The objects the chart creates, as the API server would hold them; beside them, objects config-sync must not read.
    const cm = only(objs, 'ConfigMap', values.scripting.configMapName) as KubeObject;
    kube.put(cm);
    kube.put(only(objs, 'Secret', values.scripting.secretName) as KubeObject);
    kube.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-password', namespace: 'traffic' }, data: { password: Buffer.from('hunter2').toString('base64') } });
    kube.put({ ...cm, metadata: { name: values.scripting.configMapName, namespace: 'elsewhere' }, data: { [SCRIPTS_KEY]: '{"0":{"title":"x","code":"// x\\n","active":true}}' } });
    const statuses: ReplicaStatus[] = [];
    const pod = { name: 'ws-wirescript-config-sync-6b8f-q2w3e', nodeName: 'node-a' };
    nc.subscribe(statusSubject('config-sync', pod.name), { callback: (e, m) => { if (!e) statuses.push(decodeMessage(ReplicaStatus, m.data)); } });
    await nc.flush();

    const sync = await startService(dep, pod, {
      NATS_URL: env.nats.url, HEALTH_PORT: String(env.healthPort), PROMETHEUS_PORT: String(env.metricsPort), STATUS_INTERVAL: '100ms',
      KUBECONFIG: env.kubeconfig,
    });
    assert.equal(sync.env.CONFIGMAP_NAMESPACE, 'traffic');
    await sync.ready(); // NATS connected, the ConfigMap and the Secret listed, the first sync done
    const kv = await openKv(nc, SCRIPTS_KV_BUCKET, { create: true, history: 5 });
    const readSet = async () => {
      const e = await kv.get(SCRIPTS_KV_KEY);
      return e && e.operation === 'PUT' ? decodeMessage(ScriptSet, e.value) : null;
    };
    const waitSet = async (what: string, ok: (s: ScriptSet) => boolean) => {
      const until = Date.now() + 10_000;
      for (;;) {
        const set = await readSet();
        if (set && ok(set)) return set;
        assert.ok(Date.now() < until && sync.proc.exitCode === null, `${what}: KV has ${JSON.stringify(set)}:\n${sync.log()}`);
        await sleep(50);
      }
    };
    // The empty ConfigMap and the Secret from scripting.env: no scripts, the env.
    const first = await waitSet('the env from the chart\'s Secret', (s) => s.env.SLACK_TOKEN === SECRET);
    assert.deepEqual(first.scripts, []);
    assert.deepEqual(first.env, { SLACK_TOKEN: SECRET });
    // A script written into the chart's ConfigMap (as `wirescript scripts --source` does) is picked up live.
    kube.put({ ...cm, data: { [SCRIPTS_KEY]: JSON.stringify({ 0: { title: 'chart smoke', code: '// chart smoke\nfunction onItemCaptured(d) {}', active: true } }), [ACTIVE_SCRIPTS_KEY]: '' } });
    const second = await waitSet('the script from the ConfigMap', (s) => s.scripts.length === 1);
    assert.equal(second.scripts[0].title, 'chart smoke');
    assert.equal(second.scripts[0].active, true);
    assert.ok(second.revision > first.revision);
    const until = Date.now() + 5_000;
    while (statuses.length === 0) {
      assert.ok(Date.now() < until, `no status from config-sync:\n${sync.log()}`);
      await sleep(50);
    }
    assert.equal(statuses.at(-1)!.service, 'config-sync');
    assert.equal((await fetch(`http://127.0.0.1:${env.metricsPort}/metrics`)).status, 200);

    // Every request config-sync made is allowed by the rendered RBAC (by resourceNames: the field selector names the object), and every granted right was used.
    const sa = { name: dep.spec.template.spec.serviceAccountName, namespace: 'traffic' };
    assert.deepEqual(assertRbacIsExactlyWhatIsRequested(objs, sa, kube.requests), codeRights('config-sync'));
    assert.ok(!sync.log().includes(SECRET), 'the Secret\'s values are never logged');

    await sync.terminate();
  });

  /** The capture DaemonSet's container started here (see captureLaunch) against a local nats-server; null when it cannot be. */
  async function startCapture(t: { skip(msg: string): void; diagnostic(msg: string): void; after(fn: () => unknown): void }, override: (env: Record<string, string>) => Record<string, string>) {
    try {
      findNatsServer();
    } catch (err) {
      t.skip(`nats-server not installed: ${(err as Error).message}`);
      return null;
    }
    const objs = await render({ set: ['telemetry.prometheus.enabled=true'] });
    const ds = only(objs, 'DaemonSet', '-capture');
    const c = container(ds, 'capture');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'wirescript-chart-capture-'));
    tmpDirs.push(dir);
    const launch = await captureLaunch(c, ds.spec.template.spec, dir);
    if (typeof launch === 'string') {
      t.skip(launch);
      return null;
    }
    t.diagnostic(`capture started ${launch.how}`);
    const nats = await startNatsServer();
    const nc = await connectNats({ url: nats.url, name: 'chart-test-capture', log: () => {} });
    t.after(async () => {
      await drainAndClose(nc);
      await nats.stop();
    });
    const pod = { name: 'ws-wirescript-capture-x2k9p', nodeName: 'node-a' };
    const [healthPort, metricsPort] = [await freePort(), await freePort()];
    // The DaemonSet's env as the kubelet fills it; only the NATS URL and the ports are local ones.
    const env = override({ ...podEnv(c, pod), NATS_URL: nats.url, HEALTH_PORT: String(healthPort), PROMETHEUS_PORT: String(metricsPort) });
    const proc = spawn(launch.argv[0], launch.argv.slice(1), {
      cwd: REPO_ROOT, // the image's WORKDIR /app
      env: { PATH: launch.path, HOME: dir, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(proc);
    let log = '';
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    /** Polls /readyz until 200; fails early when the process exits or logs `failFast`. */
    const ready = async (timeoutMs: number, failFast?: RegExp) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const status = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then((r) => r.status, () => 0);
        if (status === 200) return;
        assert.ok(!failFast?.test(log), `capture failed to start:\n${log}`);
        assert.ok(Date.now() < until && proc.exitCode === null, `capture never became ready (/readyz ${status}):\n${log}`);
        await sleep(100);
      }
    };
    /** SIGTERM: exits 0 within the pod's grace period (and, by far, within 2 x DRAIN_TIMEOUT). */
    const terminate = async () => {
      const grace = ds.spec.template.spec.terminationGracePeriodSeconds as number;
      const t0 = Date.now();
      proc.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(grace * 1000, 'timeout', { ref: false })]);
      assert.equal(code, 0, `capture exit after SIGTERM:\n${log}`);
      assert.ok(Date.now() - t0 < 2 * parseDuration(env.DRAIN_TIMEOUT) + 5_000);
    };
    return { ds, c, nc, pod, env, proc, launch, healthPort, metricsPort, ready, terminate, log: () => log };
  }

  test('the capture env runs capture: packet socket with only what the pod grants, /readyz 200, an HTTP call becomes an item, SIGTERM exits 0', async (t) => {
    // Traffic of its own on loopback, selected by the BPF filter.
    const server = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end('captured by the chart test');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise((r) => server.close(r)));
    const port = (server.address() as { port: number }).port;
    const run = await startCapture(t, (env) => ({ ...env, CAPTURE_INTERFACE: 'lo', CAPTURE_FILTER: `tcp port ${port}`, STATUS_INTERVAL: '100ms' }));
    if (!run) return;
    const { c, nc, pod, proc, launch } = run;
    const items: K8s[] = [];
    nc.subscribe(itemsSubject(pod.nodeName, 'http'), {
      callback: (e, m) => {
        if (e) return;
        const it = decodeMessage(Item, m.data);
        items.push({ node: it.node, json: JSON.parse(Buffer.from(it.json).toString('utf8')) });
      },
    });
    const statuses: ReplicaStatus[] = [];
    nc.subscribe(statusSubject('capture', pod.name), { callback: (e, m) => { if (!e) statuses.push(decodeMessage(ReplicaStatus, m.data)); } });
    await nc.flush();

    await run.ready(20_000);
    // The probes' endpoints answer on the port the chart names "health".
    for (const [probe, route] of [['livenessProbe', '/livez'], ['readinessProbe', '/readyz']] as const) {
      assert.equal(c[probe].httpGet.path, route);
      const res = await fetch(`http://127.0.0.1:${run.healthPort}${route}`);
      assert.equal(res.status, 200, `${route}: ${await res.text()}`);
    }
    // It runs as the pod's user with the added capabilities and nothing else.
    if (launch.expect) {
      const st = procStatus(proc.pid!);
      assert.equal(Number(st.Uid.split(/\s+/)[0]), launch.expect.uid, 'capture UID');
      assert.equal(BigInt(`0x${st.CapEff}`), launch.expect.caps, `effective capabilities of capture: ${st.CapEff}`);
      assert.equal(BigInt(`0x${st.CapPrm}`), launch.expect.caps, `permitted capabilities of capture: ${st.CapPrm}`);
      assert.equal(st.NoNewPrivs, '1');
    }

    // A real HTTP call on loopback becomes an item on ws.items.<node>.http.
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/chart-smoke', agent: false }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    const until = Date.now() + 10_000;
    while (items.length === 0) {
      assert.ok(Date.now() < until && proc.exitCode === null, `no item from the captured HTTP call:\n${run.log()}`);
      await sleep(50);
    }
    assert.equal(items[0].node, pod.nodeName);
    assert.equal(items[0].json.request.method, 'GET');
    assert.equal(items[0].json.request.path, '/chart-smoke');
    assert.equal(items[0].json.response.status, 200);
    while (statuses.length === 0) {
      assert.ok(Date.now() < until && proc.exitCode === null, `no status from capture (replica ${pod.name}):\n${run.log()}`);
      await sleep(50);
    }
    assert.equal(statuses[0].service, 'capture');
    assert.equal(statuses[0].node, pod.nodeName);
    const metrics = await fetch(`http://127.0.0.1:${run.metricsPort}/metrics`);
    assert.equal(metrics.status, 200);
    await metrics.text();

    await run.terminate();
  });

  test('capture opens the chart\'s default interface ("any")', async (t) => {
    const port = await freePort();
    const run = await startCapture(t, (env) => ({ ...env, CAPTURE_FILTER: `tcp port ${port}` }));
    if (!run) return;
    assert.equal(run.env.CAPTURE_INTERFACE, 'any');
    await run.ready(20_000, /LiveCaptureError|cannot capture|does not decode/);
    await run.terminate();
  });
});
