/** config-sync configuration: environment variables, one schema, documented defaults with units. */
import { readFileSync } from 'node:fs';
import { commonConfig, defineConfig, vars, type Config } from '@wirescript/config';
import { DEFAULT_MAX_SCRIPT_BYTES } from '@wirescript/engine';
import { DEFAULT_CONFIGMAP_NAME, DEFAULT_SECRET_NAME } from './format.ts';

/** Where a pod's service account namespace is mounted. */
export const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The pod's namespace when running in a cluster, else "default". */
export function defaultNamespace(file = IN_CLUSTER_NAMESPACE_FILE): string {
  try {
    const ns = readFileSync(file, 'utf8').trim();
    return ns === '' ? 'default' : ns;
  } catch {
    return 'default';
  }
}

export const configSyncConfig = defineConfig({
  ...commonConfig,
  scriptsDir: vars.string('SCRIPTS_DIR', {
    optional: true,
    doc: 'A folder of `*.js` scripts (watched) to use instead of Kubernetes, for one machine; unset = read the ConfigMap and the Secret',
  }),
  scriptingEnv: vars.json<Record<string, unknown>>('SCRIPTING_ENV', {
    optional: true,
    secret: true,
    doc: 'With SCRIPTS_DIR: the scripts\' `env.*` as a JSON object of strings (with Kubernetes it comes from the Secret)',
  }),
  configMapName: vars.string('CONFIGMAP_NAME', { default: DEFAULT_CONFIGMAP_NAME, doc: 'ConfigMap holding the scripts (keys SCRIPTING_SCRIPTS and SCRIPTING_ACTIVE_SCRIPTS)' }),
  namespace: vars.string('CONFIGMAP_NAMESPACE', {
    default: () => defaultNamespace(),
    defaultDoc: 'the pod\'s namespace in a cluster, else `default`',
    doc: 'Namespace of the ConfigMap and of the Secret',
  }),
  secretName: vars.string('SECRET_NAME', { default: DEFAULT_SECRET_NAME, doc: 'Secret holding the scripts\' environment (key SCRIPTING_ENV, a JSON object); a missing Secret means no env' }),
  kubeconfig: vars.string('KUBECONFIG', {
    optional: true,
    doc: 'Kubeconfig file (or a path list, merged as kubectl does); unset = the pod\'s service account in a cluster, else ~/.kube/config',
  }),
  maxScriptBytes: vars.int('MAX_SCRIPT_BYTES', { default: DEFAULT_MAX_SCRIPT_BYTES, min: 1, max: 64 * 1024 * 1024, doc: 'Largest script accepted, bytes; a larger one is reported and not activated' }),
  syncDebounceMs: vars.duration('SYNC_DEBOUNCE', { default: 100, min: 0, max: 60_000, doc: 'Quiet time after a change (ConfigMap, Secret or file event) before the set is rebuilt, so a burst of changes is one sync' }),
  watchBackoffMinMs: vars.duration('WATCH_BACKOFF_MIN', { default: 500, min: 10, doc: 'First wait before reconnecting a dropped Kubernetes watch (doubles up to WATCH_BACKOFF_MAX, with jitter)' }),
  watchBackoffMaxMs: vars.duration('WATCH_BACKOFF_MAX', { default: 30_000, min: 10, doc: 'Longest wait between Kubernetes watch reconnects' }),
  statusIntervalMs: vars.duration('STATUS_INTERVAL', { default: 5_000, min: 100, doc: 'Period of the replica status on ws.status.config-sync.<replica>' }),
  healthPort: vars.int('HEALTH_PORT', { default: 8084, min: 0, max: 65535, doc: 'Port of the HTTP health endpoints /livez and /readyz (ready: NATS connected and the first sync done); 0 = off' }),
  healthHost: vars.string('HEALTH_HOST', { default: '0.0.0.0', doc: 'Address the health endpoints bind to' }),
  drainTimeoutMs: vars.duration('DRAIN_TIMEOUT', { default: 5_000, min: 100, doc: 'On SIGTERM, how long to finish a sync in progress and flush before closing' }),
});
export type ConfigSyncConfig = Config<typeof configSyncConfig>;
