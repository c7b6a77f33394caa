/**
 * The Helm chart (deploy/helm/wirescript), the Dockerfile and the code must
 * agree. Run: node --test test/deploy/helm-chart.test.ts
 *
 * - Static checks (no helm): Chart.yaml and values.yaml parse; every value is
 *   documented and used; every `.Values.x.y` a template reads exists; every
 *   env variable a template names is one the code reads; the Dockerfile's
 *   entrypoint, command and build steps match the repository.
 * - Rendered with a real helm (found or fetched: see helm.ts): lint, the
 *   objects for the default values and for overrides (replicas, external
 *   NATS, HPA, Prometheus), the rendered env loaded by the services' own
 *   config loader, and the rendered NATS config + runner env run for real
 *   (nats-server and the script-runner process).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { loadConfig, parseDuration, type AnyVarSpec, type Schema } from '@wirescript/config';
import { connectNats, drainAndClose } from '@wirescript/nats';
import { ReplicaStatus, decodeMessage, statusSubject } from '@wirescript/proto';
import { findNatsServer, freePort, putScriptSet } from '@wirescript/testing';
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
const RESERVED_VALUES = ['scripting'];

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

/** The env variables every rendered wirescript container sets are the ones its service reads, and load. */
function assertEnvMatchesCode(objs: K8s[]): void {
  const wcs = wirescriptContainers(objs);
  assert.ok(wcs.length > 0, 'no wirescript container rendered');
  for (const { container: c, service } of wcs) {
    const schema = schemas.get(service);
    assert.ok(schema, `container ${c.name} runs "${service}", which has no services/${service}/src/config.ts`);
    const known = varNames(schema);
    for (const e of c.env as K8s[]) assert.ok(known.has(e.name), `${service}: env ${e.name} is not read by the service (not in its config schema)`);
    assert.doesNotThrow(() => loadConfig(schema, podEnv(c, { name: 'pod-0', nodeName: 'node-a' })), `${service}: the rendered env does not load`);
  }
}

const RUNNER_ENV = [
  'NATS_URL', 'NODE_NAME', 'REPLICA_ID', 'LOG_LEVEL', 'HOOK_TIMEOUT', 'JOB_TIMEOUT', 'SCRIPT_MEMORY_LIMIT_MB', 'SCRIPT_STACK_LIMIT_KB',
  'DISPATCH_BATCH_SIZE', 'ITEM_QUEUE_CAPACITY', 'PACKET_QUEUE_CAPACITY', 'STATUS_INTERVAL', 'LOG_RATE_LIMIT', 'DRAIN_TIMEOUT',
];

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
      for (const m of text.matchAll(/"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"/g)) named.add(m[1]);
      for (const m of text.matchAll(/-\s+name:\s+([A-Z][A-Z0-9_]+)\s*$/gm)) named.add(m[1]);
    }
    for (const name of RUNNER_ENV) assert.ok(named.has(name), `templates do not set ${name}`);
    const unknown = [...named].filter((n) => !ALL_VAR_NAMES.has(n));
    assert.deepEqual(unknown, [], `templates set env variables no service reads: ${unknown.join(', ')}`);
  });

  test('the script storage names are the Kubeshark ones', () => {
    assert.equal(values.scripting.configMapName, 'kubeshark-config-map');
    assert.equal(values.scripting.secretName, 'kubeshark-secret');
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
    assert.deepEqual(kinds(objs), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'Service', 'ServiceAccount', 'StatefulSet']);
    for (const o of objs) {
      assert.equal(o.metadata.namespace, 'traffic', `${o.kind} ${o.metadata.name} namespace`);
      assert.equal(o.metadata.labels['app.kubernetes.io/instance'], 'ws');
      assert.ok(String(o.metadata.name).length <= 63);
    }

    const sa = only(objs, 'ServiceAccount');
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
    const INTENTIONALLY_DIFFERENT = new Set(['NATS_URL', 'NODE_NAME', 'REPLICA_ID']);
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
    assert.deepEqual(kinds(objs), ['Deployment', 'PodDisruptionBudget', 'ServiceAccount']);
    const env = envMap(container(only(objs, 'Deployment', '-script-runner')));
    assert.equal(env.get('NATS_URL')!.value, 'tls://nats.messaging.svc:4222');
    assertEnvMatchesCode(objs);

    const withSecret = await render({ set: ['nats.enabled=false', 'nats.urlSecret.name=nats-creds'] });
    const env2 = envMap(container(only(withSecret, 'Deployment', '-script-runner')));
    assert.deepEqual(env2.get('NATS_URL')!.valueFrom, { secretKeyRef: { name: 'nats-creds', key: 'NATS_URL' } });
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
  });
});

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
});
