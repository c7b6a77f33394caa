import os from 'node:os';
import { defineConfig, vars, type Config } from './schema.ts';

/** Telemetry variables, read by `@wirescript/telemetry`'s `initTelemetry`. */
export const telemetryConfig = defineConfig({
  otlpEndpoint: vars.url('OTEL_EXPORTER_OTLP_ENDPOINT', {
    optional: true,
    protocols: ['http:', 'https:'],
    doc: 'OTLP/HTTP collector base URL (e.g. `http://otel-collector:4318`); `/v1/traces` and `/v1/metrics` are appended. Unset: no OTLP export',
  }),
  otlpHeaders: vars.map('OTEL_EXPORTER_OTLP_HEADERS', {
    optional: true,
    secret: true,
    doc: 'Headers sent with every OTLP request, e.g. `authorization=Bearer%20TOKEN`',
  }),
  tracesExporter: vars.enum('OTEL_TRACES_EXPORTER', ['otlp', 'console', 'none'], {
    optional: true,
    defaultDoc: '`otlp` if an OTLP endpoint is set, else `none`',
    doc: 'Where spans go',
  }),
  metricsExporter: vars.enumList('OTEL_METRICS_EXPORTER', ['otlp', 'prometheus', 'console', 'none'], {
    optional: true,
    defaultDoc: '`otlp` if an OTLP endpoint is set',
    doc: 'Metric exporters. `otlp` and `console` push every `OTEL_METRIC_EXPORT_INTERVAL`; `prometheus` serves the scrape endpoint on port 9464 when `PROMETHEUS_PORT` is 0 (a non-zero `PROMETHEUS_PORT` serves it whatever this says); `none`: no push exporter',
  }),
  metricExportInterval: vars.duration('OTEL_METRIC_EXPORT_INTERVAL', {
    default: 60_000,
    min: 100,
    doc: 'Interval between pushes of metrics to OTLP or the console (ms unless a unit is given)',
  }),
  traceSampleRatio: vars.number('TRACE_SAMPLE_RATIO', {
    default: 1,
    min: 0,
    max: 1,
    doc: 'Fraction of new traces recorded (0–1); a sampled parent from another service is always followed',
  }),
  prometheusPort: vars.int('PROMETHEUS_PORT', {
    default: 0,
    min: 0,
    max: 65535,
    doc: 'TCP port of the Prometheus scrape endpoint `/metrics`; 0 = off',
  }),
  prometheusHost: vars.string('PROMETHEUS_HOST', {
    default: '0.0.0.0',
    doc: 'Address the Prometheus endpoint binds to (all interfaces by default, so the cluster can scrape it)',
  }),
});
export type TelemetryConfig = Config<typeof telemetryConfig>;

/** Variables every service reads: spread into each service's schema. */
export const commonConfig = defineConfig({
  natsUrl: vars.url('NATS_URL', {
    default: 'nats://127.0.0.1:4222',
    protocols: ['nats:', 'tls:'],
    doc: 'NATS server URL (a password in it is redacted in logs)',
  }),
  nodeName: vars.string('NODE_NAME', {
    default: () => os.hostname(),
    defaultDoc: 'host name',
    doc: 'Name of the node this replica runs on (the Kubernetes node name in a DaemonSet)',
  }),
  replicaId: vars.string('REPLICA_ID', {
    default: () => `${os.hostname()}-${process.pid}`,
    defaultDoc: '`<hostname>-<pid>`',
    doc: 'Unique id of this replica, in status reports and as the OpenTelemetry `service.instance.id`',
  }),
  logLevel: vars.enum('LOG_LEVEL', ['debug', 'info', 'warn', 'error', 'silent'], {
    default: 'info',
    doc: 'Least severe log level written to stderr',
  }),
  ...telemetryConfig,
});
export type CommonConfig = Config<typeof commonConfig>;

/** Script engine limits every engine host (script-runner, hub, the offline runner) reads. */
export const engineConfig = defineConfig({
  hookTimeoutMs: vars.duration('HOOK_TIMEOUT', { default: 200, min: 1, max: 600_000, doc: 'Wall-time budget of one hook call; a call over it is stopped and reported' }),
  jobTimeoutMs: vars.duration('JOB_TIMEOUT', { default: 5_000, min: 1, max: 3_600_000, doc: "Wall-time budget of one job run and of a script's top level at load" }),
  memoryLimitMb: vars.int('SCRIPT_MEMORY_LIMIT_MB', { default: 128, min: 4, max: 16_384, doc: 'Heap limit of the VM all scripts of a replica share, MiB' }),
  stackLimitKb: vars.int('SCRIPT_STACK_LIMIT_KB', { default: 256, min: 16, max: 384, doc: 'Guest stack limit, KiB (deeper recursion gets a catchable stack overflow)' }),
  dispatchBatchSize: vars.int('DISPATCH_BATCH_SIZE', { default: 256, min: 1, max: 10_000, doc: 'Items handed to the VM per host->guest crossing' }),
});
export type EngineConfig = Config<typeof engineConfig>;
