/** Trace context crosses NATS: capture-side publish -> runner batch span -> hub action and console line headers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { context } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { loadConfig, telemetryConfig } from '@wirescript/config';
import { connectNats, drainAndClose, publishWithTrace, type Msg } from '@wirescript/nats';
import { HUB_ACTIONS_SUBJECT, Item, LOGS_WILDCARD, encodeMessage, itemsSubject } from '@wirescript/proto';
import { ScriptRunner, runnerConfig } from '@wirescript/script-runner';
import { initTelemetry, startProducerSpan } from '@wirescript/telemetry';
import { makeHttpItem, putScriptSet, startNatsServer } from '@wirescript/testing';
import { runnerEnv, waitFor } from './helpers.ts';

test('an item\'s trace continues into the runner and out on its hub actions and console lines', async (t) => {
  const exporter = new InMemorySpanExporter();
  const telemetry = await initTelemetry({ serviceName: 'test', serviceInstanceId: 't1', config: loadConfig(telemetryConfig, {}), spanExporters: [exporter] });
  const server = await startNatsServer({ jetstream: true });
  const nc = await connectNats({ url: server.url, name: 'test', log: () => {} });
  await putScriptSet(nc, [{ code: '// tracer\nfunction onItemCaptured(d) { console.log("seen", d.id); hub.action("seen", { id: d.id }); }' }]);
  const runner = new ScriptRunner(loadConfig(runnerConfig, runnerEnv(server.url, 'trace-1')), { tracing: true });
  await runner.start();
  t.after(async () => {
    await runner.stop();
    await drainAndClose(nc);
    await server.stop();
    await telemetry.shutdown();
  });

  const got: Msg[] = [];
  nc.subscribe(HUB_ACTIONS_SUBJECT, { callback: (e, m) => { if (!e) got.push(m); } });
  nc.subscribe(LOGS_WILDCARD, { callback: (e, m) => { if (!e) got.push(m); } });
  await nc.flush();

  const { span: root, context: rootCtx } = startProducerSpan('capture item');
  const traceId = root.spanContext().traceId;
  context.with(rootCtx, () => {
    const it = makeHttpItem(1);
    publishWithTrace(nc, itemsSubject('node-a', 'http'), encodeMessage(Item, Item.fromPartial({ id: 'x', node: 'node-a', protocol: 'http', json: Buffer.from(JSON.stringify(it)) })));
  });
  root.end();
  await waitFor('hub action and console line', () => got.length >= 2);
  for (const m of got) {
    const tp = m.headers?.get('traceparent') ?? '';
    assert.equal(tp.split('-')[1], traceId, `${m.subject} carries the item's trace`);
  }
  await waitFor('runner span exported', () => exporter.getFinishedSpans().some((s) => s.name === 'onItemCaptured batch'));
  const batch = exporter.getFinishedSpans().find((s) => s.name === 'onItemCaptured batch')!;
  assert.equal(batch.spanContext().traceId, traceId);
  assert.ok(batch.links.length >= 1);
});
