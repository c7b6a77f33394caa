import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { loadConfig, telemetryConfig } from '@wirescript/config';
import { freePort } from '@wirescript/testing';
import { extractContext, initTelemetry, injectContext, startProducerSpan, TelemetryError, withConsumerSpan, type Telemetry } from './index.ts';

const handles: Telemetry[] = [];
afterEach(async () => {
  while (handles.length > 0) await handles.pop()?.shutdown();
});

async function init(env: Record<string, string> = {}, spanExporters: InMemorySpanExporter[] = []): Promise<Telemetry> {
  const t = await initTelemetry({ serviceName: 'test-svc', serviceInstanceId: 'test-1', config: loadConfig(telemetryConfig, env), spanExporters });
  handles.push(t);
  return t;
}

describe('trace propagation through headers', () => {
  it('a consumer span extracted from headers is a child of the producer span', async () => {
    const exporter = new InMemorySpanExporter();
    await init({}, [exporter]);

    // Publisher side.
    const headers = new Map<string, string>();
    const { span: producer, context: pctx } = startProducerSpan('publish ws.items.n1.http', { 'messaging.system': 'nats' });
    injectContext(headers, pctx);
    producer.end();
    assert.match(headers.get('traceparent') ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    // Subscriber side: nothing active here, the parent comes from the headers only.
    const inner = withConsumerSpan('process ws.items.n1.http', headers, (span) => {
      assert.equal(trace.getActiveSpan(), span);
      return span.spanContext();
    });

    const spans = exporter.getFinishedSpans();
    const p = spans.find((s) => s.name.startsWith('publish'));
    const c = spans.find((s) => s.name.startsWith('process'));
    assert.ok(p && c);
    assert.equal(p.kind, SpanKind.PRODUCER);
    assert.equal(c.kind, SpanKind.CONSUMER);
    assert.equal(c.spanContext().traceId, p.spanContext().traceId);
    assert.equal(c.parentSpanContext?.spanId, p.spanContext().spanId);
    assert.equal(c.parentSpanContext?.isRemote, true);
    assert.equal(inner.traceId, p.spanContext().traceId);
    assert.equal(p.resource.attributes['service.name'], 'test-svc');
    assert.equal(p.resource.attributes['service.instance.id'], 'test-1');
  });

  it('reads headers written with another capitalisation (Go clients)', async () => {
    const exporter = new InMemorySpanExporter();
    await init({}, [exporter]);
    const { span, context: ctx } = startProducerSpan('publish x');
    const lower = new Map<string, string>();
    injectContext(lower, ctx);
    span.end();
    const upper = new Map([['Traceparent', lower.get('traceparent') ?? '']]);
    const extracted = trace.getSpanContext(extractContext(upper));
    assert.equal(extracted?.traceId, span.spanContext().traceId);
  });

  it('records errors of async consumers and rethrows them', async () => {
    const exporter = new InMemorySpanExporter();
    await init({}, [exporter]);
    await assert.rejects(
      withConsumerSpan('process bad', undefined, async () => {
        await new Promise((r) => setImmediate(r));
        throw new Error('boom');
      }),
      /boom/,
    );
    const [s] = exporter.getFinishedSpans();
    assert.equal(s.status.code, SpanStatusCode.ERROR);
    assert.equal(s.status.message, 'boom');
    assert.equal(s.events[0]?.name, 'exception');
    assert.equal(s.parentSpanContext, undefined);
  });

  it('keeps the context across awaits (AsyncLocalStorage)', async () => {
    const exporter = new InMemorySpanExporter();
    const t = await init({}, [exporter]);
    await t.tracer.startActiveSpan('outer', async (outer) => {
      await new Promise((r) => setTimeout(r, 5));
      const headers = new Map<string, string>();
      injectContext(headers);
      assert.equal(trace.getSpanContext(extractContext(headers))?.spanId, outer.spanContext().spanId);
      outer.end();
    });
  });

  it('passes an upstream trace through even with no exporter configured', async () => {
    await init();
    const upstream = new Map([['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']]);
    const downstream = new Map<string, string>();
    withConsumerSpan('process x', upstream, () => {
      const { span, context: ctx } = startProducerSpan('publish y');
      injectContext(downstream, ctx);
      span.end();
    });
    assert.match(downstream.get('traceparent') ?? '', /^00-0af7651916cd43dd8448eb211c80319c-/);
  });

  it('extractContext(undefined) is the root context, not the active one', async () => {
    const exporter = new InMemorySpanExporter();
    const t = await init({}, [exporter]);
    t.tracer.startActiveSpan('unrelated', (s) => {
      assert.equal(trace.getSpan(extractContext(undefined)), undefined);
      assert.ok(trace.getSpan(context.active()));
      s.end();
    });
  });
});

describe('Prometheus endpoint', () => {
  it('serves a counter over HTTP', async () => {
    const port = await freePort();
    const t = await init({ PROMETHEUS_PORT: String(port), PROMETHEUS_HOST: '127.0.0.1' });
    assert.deepEqual(t.prometheus, { host: '127.0.0.1', port, url: `http://127.0.0.1:${port}/metrics` });
    const counter = t.meter.createCounter('wirescript_test_items', { description: 'items seen by the test' });
    counter.add(2, { protocol: 'http' });
    counter.add(1, { protocol: 'http' });

    const res = await fetch(t.prometheus.url);
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.match(body, /# HELP wirescript_test_items_total items seen by the test/);
    assert.match(body, /wirescript_test_items_total\{[^}]*protocol="http"[^}]*\} 3/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
  });

  it('rejects with a clear error when the port is taken, and can be retried', async () => {
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      await assert.rejects(init({ PROMETHEUS_PORT: String(port), PROMETHEUS_HOST: '127.0.0.1' }), (err: unknown) => {
        assert.ok(err instanceof TelemetryError);
        assert.match(err.message, new RegExp(`cannot serve Prometheus metrics on 127\\.0\\.0\\.1:${port} .*EADDRINUSE`));
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
        return true;
      });
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    // A failed init leaves nothing half set up.
    const t = await init({ PROMETHEUS_PORT: String(port), PROMETHEUS_HOST: '127.0.0.1' });
    assert.equal(t.prometheus?.port, port);
  });

  it('closes the port on shutdown', async () => {
    const port = await freePort();
    const t = await initTelemetry({
      serviceName: 's',
      serviceInstanceId: 'i',
      config: loadConfig(telemetryConfig, { PROMETHEUS_PORT: String(port), PROMETHEUS_HOST: '127.0.0.1' }),
    });
    await t.shutdown();
    await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`));
  });
});

describe('initTelemetry', () => {
  it('exports nothing by default', async () => {
    const t = await init();
    assert.deepEqual(t.exporters, { traces: [], metrics: [] });
    assert.equal(t.prometheus, undefined);
    assert.equal(trace.getActiveSpan(), undefined);
    const span = t.tracer.startSpan('x');
    assert.equal(span.isRecording(), false);
    span.end();
  });

  it('configures OTLP from the endpoint', async () => {
    const t = await init({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1/', OTEL_METRICS_EXPORTER: 'otlp', OTEL_METRIC_EXPORT_INTERVAL: '1h' });
    assert.deepEqual(t.exporters, { traces: ['otlp http://127.0.0.1:1/v1/traces'], metrics: ['otlp http://127.0.0.1:1/v1/metrics'] });
    assert.equal(t.tracer.startSpan('x').isRecording(), true);
  });

  it('shares one SDK between services in one process', async () => {
    const exporter = new InMemorySpanExporter();
    const a = await init({}, [exporter]);
    const b = await initTelemetry({ serviceName: 'other', serviceInstanceId: 'o', config: loadConfig(telemetryConfig, {}) });
    b.tracer.startSpan('from-b').end();
    await b.shutdown();
    a.tracer.startSpan('from-a').end();
    assert.deepEqual(
      exporter.getFinishedSpans().map((s) => [s.name, s.instrumentationScope.name]),
      [
        ['from-b', 'other'],
        ['from-a', 'test-svc'],
      ],
    );
    await assert.rejects(
      initTelemetry({ serviceName: 'c', serviceInstanceId: 'c', config: loadConfig(telemetryConfig, {}), spanExporters: [exporter] }),
      TelemetryError,
    );
  });
});
