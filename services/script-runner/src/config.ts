/** script-runner configuration: environment variables, one schema, documented defaults with units. */
import { commonConfig, defineConfig, engineConfig, vars, type Config } from '@wirescript/config';
import { ITEMS_WILDCARD, PACKETS_WILDCARD, PODS_WILDCARD, RUNNER_QUEUE_GROUP } from '@wirescript/proto';


export const runnerConfig = defineConfig({
  ...commonConfig,
  ...engineConfig,
  itemsSubject: vars.string('ITEMS_SUBJECT', { default: ITEMS_WILDCARD, doc: 'Subject (filter) the runner takes items from' }),
  packetsSubject: vars.string('PACKETS_SUBJECT', { default: PACKETS_WILDCARD, doc: 'Subject (filter) of packet summary batches' }),
  podsSubject: vars.string('PODS_SUBJECT', { default: PODS_WILDCARD, doc: 'Subject (filter) of pod events (every replica gets each)' }),
  queueGroup: vars.string('QUEUE_GROUP', { default: RUNNER_QUEUE_GROUP, doc: 'NATS queue group: replicas in one group share items and packets' }),
  itemQueueCapacity: vars.int('ITEM_QUEUE_CAPACITY', { default: 65_536, min: 1, max: 10_000_000, doc: 'Items buffered between NATS and the scripts; beyond it items are dropped and counted' }),
  packetQueueCapacity: vars.int('PACKET_QUEUE_CAPACITY', { default: 1_024, min: 1, max: 1_000_000, doc: 'Packet summary batches buffered; beyond it batches are dropped and counted' }),
  statusIntervalMs: vars.duration('STATUS_INTERVAL', { default: 5_000, min: 100, doc: 'Period of the replica status on ws.status.script-runner.<replica>' }),
  logRateLimit: vars.int('LOG_RATE_LIMIT', { default: 1_000, min: 0, doc: 'Console lines per second a replica publishes (0 = unlimited); extra lines are dropped and counted' }),
  healthPort: vars.int('HEALTH_PORT', { default: 8081, min: 0, max: 65535, doc: 'Port of the HTTP health endpoints /livez and /readyz (Kubernetes probes); 0 = off' }),
  healthHost: vars.string('HEALTH_HOST', { default: '0.0.0.0', doc: 'Address the health endpoints bind to' }),
  drainTimeoutMs: vars.duration('DRAIN_TIMEOUT', { default: 10_000, min: 100, doc: 'On SIGTERM, how long to finish queued work and flush before closing' }),
});
export type RunnerConfig = Config<typeof runnerConfig>;
