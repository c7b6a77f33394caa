/** hub configuration: environment variables, one schema, documented defaults with units. */
import { commonConfig, defineConfig, engineConfig, vars, type Config } from '@wirescript/config';

// The hub's node name is always "hub" (what utils.nodeName() returns in hub
// mode and the <node> token of its subjects): NODE_NAME does not apply.
const { nodeName: _nodeName, ...common } = commonConfig;

export const hubConfig = defineConfig({
  ...common,
  ...engineConfig,
  actionMaxInFlight: vars.int('ACTION_MAX_IN_FLIGHT', {
    default: 256, min: 1, max: 10_000,
    doc: 'Hub actions fetched from the stream and not yet acknowledged (pull batch and consumer max_ack_pending)',
  }),
  actionAckWaitMs: vars.duration('ACTION_ACK_WAIT', {
    default: 30_000, min: 1_000, max: 3_600_000,
    doc: 'How long an action handed to the hub may stay unacknowledged before the stream redelivers it (first retry; later ones back off x2 up to 5m)',
  }),
  actionMaxDeliver: vars.int('ACTION_MAX_DELIVER', {
    default: 5, min: 1, max: 1_000,
    doc: 'Deliveries of one action before the stream gives up on it (an action whose handling keeps crashing the hub)',
  }),
  podWatch: vars.enum('POD_WATCH', ['auto', 'on', 'off'], {
    default: 'auto',
    doc: 'Watch pods (pod events, onPodEvent, the IP -> pod map): on, off, or auto = on when in a cluster (KUBERNETES_SERVICE_HOST) or KUBECONFIG is set',
  }),
  kubeconfig: vars.string('KUBECONFIG', {
    optional: true,
    doc: 'Kubeconfig file (or path list, or the YAML text) for the pod watch outside a cluster; wins over the in-cluster service account',
  }),
  kubernetesServiceHost: vars.string('KUBERNETES_SERVICE_HOST', { optional: true, doc: 'Set by Kubernetes in a pod: the API server address (in-cluster config)' }),
  kubernetesServicePort: vars.string('KUBERNETES_SERVICE_PORT', { optional: true, doc: 'Set by Kubernetes in a pod: the API server port (in-cluster config)' }),
  podNamespaces: vars.list('POD_NAMESPACES', {
    default: [],
    defaultDoc: 'all namespaces',
    doc: 'Namespaces whose pods are watched (comma-separated); empty = every namespace (needs cluster-wide list/watch on pods)',
  }),
  podWatchBackoffMaxMs: vars.duration('POD_WATCH_BACKOFF_MAX', {
    default: 30_000, min: 100, max: 600_000,
    doc: 'Longest wait between reconnects of the pod watch (starts at 500ms, doubles, with jitter)',
  }),
  podMap: vars.bool('POD_MAP', { default: true, doc: 'Keep the IP -> pod map (KV bucket ws_pods) that capture uses to name src/dst; needs the pod watch' }),
  podEventQueueCapacity: vars.int('POD_EVENT_QUEUE_CAPACITY', {
    default: 65_536, min: 1, max: 10_000_000,
    doc: "Pod events waiting for the hub's onPodEvent; beyond it they are dropped (for the hub's scripts only) and counted",
  }),
  statusIntervalMs: vars.duration('STATUS_INTERVAL', { default: 5_000, min: 100, doc: 'Period of the hub status on ws.status.hub.<replica>' }),
  logRateLimit: vars.int('LOG_RATE_LIMIT', { default: 1_000, min: 0, doc: 'Console lines per second the hub publishes (0 = unlimited); extra lines are dropped and counted' }),
  healthPort: vars.int('HEALTH_PORT', { default: 8083, min: 0, max: 65535, doc: 'Port of the HTTP health endpoints /livez and /readyz (Kubernetes probes); 0 = off' }),
  healthHost: vars.string('HEALTH_HOST', { default: '0.0.0.0', doc: 'Address the health endpoints bind to' }),
  drainTimeoutMs: vars.duration('DRAIN_TIMEOUT', { default: 10_000, min: 100, doc: 'On SIGTERM, how long to finish fetched actions and queued pod events and flush before closing' }),
});
export type HubConfig = Config<typeof hubConfig>;
