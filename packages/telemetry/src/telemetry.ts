import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, diag, DiagConsoleLogger, DiagLogLevel, metrics, propagation, trace, type Meter, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { TelemetryConfig } from '@wirescript/config';
import { setDefaultTracerName } from './propagation.ts';

export class TelemetryError extends Error {
  override readonly name = 'TelemetryError';
}

/** OTel's default OTLP/HTTP endpoint, used when an exporter is asked for `otlp` without an endpoint. */
const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318';
/** Prometheus' registered default port for the OTel exporter, used for `OTEL_METRICS_EXPORTER=prometheus` with `PROMETHEUS_PORT=0`. */
const DEFAULT_PROMETHEUS_PORT = 9464;

export interface TelemetryOptions {
  serviceName: string;
  serviceInstanceId: string;
  serviceVersion?: string;
  /** The telemetry part of a loaded config (`loadConfig(commonConfig, env)` has it). */
  config: TelemetryConfig;
  /** Extra span exporters, exported synchronously (tests: `InMemorySpanExporter`). */
  spanExporters?: SpanExporter[];
  /** Extra metric readers (tests: a reader over `InMemoryMetricExporter`). */
  metricReaders?: IMetricReader[];
}

export interface Telemetry {
  readonly tracer: Tracer;
  readonly meter: Meter;
  /** Where Prometheus can scrape, when enabled (the real port if 0 was asked). */
  readonly prometheus: { readonly host: string; readonly port: number; readonly url: string } | undefined;
  /** What was set up, for the startup log line. */
  readonly exporters: { readonly traces: readonly string[]; readonly metrics: readonly string[] };
  /** Flushes pending spans and metrics and releases this handle; the last one tears the SDK down. */
  shutdown(): Promise<void>;
}

interface State {
  serviceName: string;
  refs: number;
  closed: boolean;
  tracerProvider: TracerProvider | undefined;
  meterProvider: MeterProvider | undefined;
  prometheus: Telemetry['prometheus'];
  server: http.Server | undefined;
  exporters: Telemetry['exporters'];
}

let current: Promise<State> | undefined;

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function setUp(opts: TelemetryOptions): Promise<State> {
  const cfg = opts.config;
  const endpoint = (cfg.otlpEndpoint ?? DEFAULT_OTLP_ENDPOINT).replace(/\/+$/, '');
  const headers = cfg.otlpHeaders ? { ...cfg.otlpHeaders } : undefined;

  const resource = defaultResource().merge(
    resourceFromAttributes({
      [ATTR_SERVICE_NAME]: opts.serviceName,
      [ATTR_SERVICE_INSTANCE_ID]: opts.serviceInstanceId,
      ...(opts.serviceVersion ? { [ATTR_SERVICE_VERSION]: opts.serviceVersion } : {}),
    }),
  );

  // Traces: OTLP when an endpoint is configured, unless OTEL_TRACES_EXPORTER says otherwise.
  const tracesKind = cfg.tracesExporter ?? (cfg.otlpEndpoint ? 'otlp' : 'none');
  const spanProcessors: SpanProcessor[] = [];
  const traceNames: string[] = [];
  if (tracesKind === 'otlp') {
    spanProcessors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${endpoint}/v1/traces`, headers }) }));
    traceNames.push(`otlp ${endpoint}/v1/traces`);
  } else if (tracesKind === 'console') {
    spanProcessors.push(new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() }));
    traceNames.push('console');
  }
  for (const exporter of opts.spanExporters ?? []) {
    spanProcessors.push(new SimpleSpanProcessor({ exporter }));
    traceNames.push(exporter.constructor.name);
  }

  // Metrics: push exporters from OTEL_METRICS_EXPORTER (default otlp when an endpoint is set);
  // Prometheus whenever PROMETHEUS_PORT is set, or on 9464 if the list asks for it.
  const metricKinds = new Set(cfg.metricsExporter ?? (cfg.otlpEndpoint ? ['otlp'] : []));
  const readers: IMetricReader[] = [];
  const metricNames: string[] = [];
  const interval = cfg.metricExportInterval;
  const exportTimeoutMillis = Math.min(30_000, interval);
  if (metricKinds.has('otlp')) {
    const exporter = new OTLPMetricExporter({ url: `${endpoint}/v1/metrics`, headers });
    readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: interval, exportTimeoutMillis }));
    metricNames.push(`otlp ${endpoint}/v1/metrics`);
  }
  if (metricKinds.has('console')) {
    readers.push(new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: interval, exportTimeoutMillis }));
    metricNames.push('console');
  }
  let promExporter: PrometheusExporter | undefined;
  const promPort = cfg.prometheusPort > 0 ? cfg.prometheusPort : metricKinds.has('prometheus') ? DEFAULT_PROMETHEUS_PORT : 0;
  if (promPort > 0) {
    // We run the HTTP server ourselves: the exporter's own server reports a bind error only to a callback.
    promExporter = new PrometheusExporter({ preventServerStart: true });
    readers.push(promExporter);
  }
  readers.push(...(opts.metricReaders ?? []));

  let server: http.Server | undefined;
  let prometheus: Telemetry['prometheus'];
  if (promExporter) {
    const exporter = promExporter;
    server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/metrics') return exporter.getMetricsRequestHandler(req, res);
      res.statusCode = 404;
      res.end('not found: metrics are at /metrics\n');
    });
    const host = cfg.prometheusHost;
    try {
      await listen(server, promPort, host);
    } catch (err) {
      await exporter.shutdown().catch(() => undefined);
      throw new TelemetryError(`cannot serve Prometheus metrics on ${host}:${promPort} (PROMETHEUS_PORT/PROMETHEUS_HOST): ${(err as Error).message}`, {
        cause: err,
      });
    }
    const port = (server.address() as AddressInfo).port;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    prometheus = { host, port, url: `http://${urlHost}:${port}/metrics` };
    metricNames.push(`prometheus ${prometheus.url}`);
  }

  if (spanProcessors.length > 0 || readers.length > 0) {
    // Exporter failures (collector down) would otherwise vanish: OTel reports them through diag.
    diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);
  }
  // Context flows and is propagated even with no exporter, so a trace started upstream continues downstream.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));

  // With nothing to export, keep the API's no-op tracer/meter: no span or metric cost on hot paths.
  let tracerProvider: TracerProvider | undefined;
  if (spanProcessors.length > 0) {
    const ratio = cfg.traceSampleRatio;
    const root = ratio >= 1 ? new AlwaysOnSampler() : new TraceIdRatioBasedSampler(ratio);
    tracerProvider = new TracerProvider({ resource, spanProcessors, sampler: new ParentBasedSampler({ root }) });
    trace.setGlobalTracerProvider(tracerProvider);
  }
  let meterProvider: MeterProvider | undefined;
  if (readers.length > 0) {
    meterProvider = new MeterProvider({ resource, readers });
    metrics.setGlobalMeterProvider(meterProvider);
  }
  setDefaultTracerName(opts.serviceName);

  return {
    serviceName: opts.serviceName,
    refs: 0,
    closed: false,
    tracerProvider,
    meterProvider,
    prometheus,
    server,
    exporters: { traces: Object.freeze(traceNames), metrics: Object.freeze(metricNames) },
  };
}

async function tearDown(state: State): Promise<void> {
  const results = await Promise.allSettled([
    (async () => {
      if (!state.tracerProvider) return;
      try {
        await state.tracerProvider.forceFlush();
      } finally {
        await state.tracerProvider.shutdown();
      }
    })(),
    // MeterProvider.shutdown makes periodic readers export one last time.
    state.meterProvider?.shutdown(),
    state.server ? closeServer(state.server) : undefined,
  ]);
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
  diag.disable();
  setDefaultTracerName('wirescript');
  // Some SDK parts reject with an array of errors.
  const errors = results.flatMap((r) => (r.status === 'rejected' ? (Array.isArray(r.reason) ? r.reason : [r.reason]) : [])) as unknown[];
  if (errors.length > 0) {
    const first = errors[0] instanceof Error ? errors[0].message : String(errors[0]);
    throw new TelemetryError(`telemetry shutdown could not flush everything: ${first}`, {
      cause: errors.length === 1 ? errors[0] : new AggregateError(errors),
    });
  }
}

/**
 * Sets up OpenTelemetry for the process: AsyncLocalStorage context, W3C
 * trace-context + baggage propagation, and the exporters the config asks for
 * (none by default). Rejects with TelemetryError if the Prometheus port cannot
 * be bound.
 *
 * Once per process: a second call while the first is live (every service in
 * one process, `wirescript up`) shares the first SDK and its exporters, with
 * its own instrumentation scope; the last `shutdown()` tears it down.
 */
export async function initTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  if (current && ((opts.spanExporters?.length ?? 0) > 0 || (opts.metricReaders?.length ?? 0) > 0)) {
    throw new TelemetryError('initTelemetry: telemetry is already initialised in this process; extra exporters can only be given to the first call');
  }
  let pending: Promise<State>;
  let state: State;
  do {
    pending = current ?? setUp(opts);
    current = pending;
    try {
      state = await pending;
    } catch (err) {
      if (current === pending) current = undefined;
      throw err;
    }
    // The last holder may have shut the shared SDK down while we waited for it: set up anew.
  } while (state.closed);
  state.refs++;
  let released = false;
  return {
    tracer: trace.getTracer(opts.serviceName, opts.serviceVersion),
    meter: metrics.getMeter(opts.serviceName, opts.serviceVersion),
    prometheus: state.prometheus,
    exporters: state.exporters,
    async shutdown() {
      if (released) return;
      released = true;
      state.refs--;
      if (state.refs > 0) {
        // Others still use the SDK: only flush what this service produced so far.
        await Promise.all([state.tracerProvider?.forceFlush(), state.meterProvider?.forceFlush()]);
        return;
      }
      state.closed = true;
      if (current === pending) current = undefined;
      await tearDown(state);
    },
  };
}
