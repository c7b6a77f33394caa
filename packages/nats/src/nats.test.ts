import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { headers, type Msg, type Status } from '@nats-io/transport-node';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { loadConfig, telemetryConfig } from '@wirescript/config';
import { initTelemetry, type Telemetry } from '@wirescript/telemetry';
import { freePort, startNatsServer, type NatsServer } from '@wirescript/testing';
import {
  connectNats,
  drainAndClose,
  ensureStream,
  formatStatus,
  KvError,
  NatsConnectError,
  openKv,
  publishWithTrace,
  StreamError,
  withMsgSpan,
} from './index.ts';

const enc = new TextEncoder();
const quiet = { log: () => undefined };

let srv: NatsServer;
before(async () => {
  srv = await startNatsServer();
});
after(async () => {
  await srv?.stop();
});

describe('connectNats', () => {
  it('connects with a name and closes cleanly', async () => {
    const nc = await connectNats({ url: srv.url, name: 'test/1', ...quiet });
    assert.equal(nc.isClosed(), false);
    assert.equal(await drainAndClose(nc), true);
    assert.equal(nc.isClosed(), true);
    assert.equal(await drainAndClose(nc), false); // already closed: a no-op
  });

  it('fails fast with the server named (password redacted) when nothing listens', async () => {
    const port = await freePort();
    await assert.rejects(connectNats({ url: `nats://u:secret@127.0.0.1:${port}`, name: 't', timeout: 2000, ...quiet }), (err: unknown) => {
      assert.ok(err instanceof NatsConnectError);
      assert.match(err.message, new RegExp(`^cannot connect to NATS at nats://u:\\*\\*\\*@127\\.0\\.0\\.1:${port}: `));
      assert.ok(!err.message.includes('secret'));
      return true;
    });
  });

  it('reconnects after the server restarts and reports it', async () => {
    const local = await startNatsServer({ jetstream: false });
    const events: Status['type'][] = [];
    const lines: string[] = [];
    const nc = await connectNats({
      url: local.url,
      name: 'test/reconnect',
      reconnectTimeWait: 50,
      reconnectJitter: 50,
      onStatus: (s) => {
        events.push(s.type);
        const line = formatStatus(s);
        if (line) lines.push(line);
      },
    });
    try {
      await local.restart();
      const deadline = Date.now() + 10_000;
      while (!events.includes('reconnect') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(events.includes('disconnect'), `events: ${events.join(',')}`);
      assert.ok(events.includes('reconnect'), `events: ${events.join(',')}`);
      assert.ok(lines.some((l) => l.startsWith('nats: reconnected to ')));
      // And the connection works again.
      const sub = nc.subscribe('after.restart', { max: 1 });
      nc.publish('after.restart', 'ok');
      for await (const m of sub) assert.equal(m.string(), 'ok');
    } finally {
      await drainAndClose(nc);
      await local.stop();
    }
  });
});

describe('publishWithTrace', () => {
  let telemetry: Telemetry;
  const exporter = new InMemorySpanExporter();
  before(async () => {
    telemetry = await initTelemetry({
      serviceName: 'nats-test',
      serviceInstanceId: 't',
      config: loadConfig(telemetryConfig, {}),
      spanExporters: [exporter],
    });
  });
  after(async () => {
    await telemetry.shutdown();
  });

  it('carries traceparent to the subscriber, whose span is a child', async () => {
    const nc = await connectNats({ url: srv.url, name: 'test/pub', ...quiet });
    const sub = nc.subscribe('ws.items.node1.http', { max: 1 });
    const got = (async () => {
      for await (const m of sub) return m;
      throw new Error('no message');
    })();
    const extra = headers();
    extra.set('x-kept', 'yes');
    telemetry.tracer.startActiveSpan('capture batch', (root) => {
      publishWithTrace(nc, 'ws.items.node1.http', enc.encode('{"id":1}'), { headers: extra });
      root.end();
    });
    const msg: Msg = await got;
    const traceparent = msg.headers?.get('traceparent') ?? '';
    assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.equal(msg.headers?.get('x-kept'), 'yes');

    const childTraceId = withMsgSpan(msg, (span) => span.spanContext().traceId);
    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === 'capture batch');
    const pub = spans.find((s) => s.name === 'publish ws.items.node1.http');
    const proc = spans.find((s) => s.name === 'process ws.items.node1.http');
    assert.ok(root && pub && proc);
    assert.equal(pub.parentSpanContext?.spanId, root.spanContext().spanId);
    assert.equal(traceparent.split('-')[2], pub.spanContext().spanId);
    assert.equal(proc.parentSpanContext?.spanId, pub.spanContext().spanId);
    assert.equal(childTraceId, root.spanContext().traceId);
    assert.equal(pub.attributes['messaging.system'], 'nats');
    assert.equal(pub.attributes['messaging.message.body.size'], 8);
    await drainAndClose(nc);
  });

  it('sends no headers when there is no trace to carry', async () => {
    await telemetry.shutdown(); // back to the no-op tracer
    const nc = await connectNats({ url: srv.url, name: 'test/pub2', ...quiet });
    const sub = nc.subscribe('plain', { max: 1 });
    publishWithTrace(nc, 'plain', enc.encode('x'));
    for await (const m of sub) assert.equal(m.headers, undefined);
    assert.equal(trace.getActiveSpan(), undefined);
    await drainAndClose(nc);
  });
});

describe('JetStream helpers', () => {
  it('openKv creates a bucket; put and watch see the values', async () => {
    const nc = await connectNats({ url: srv.url, name: 'test/kv', ...quiet });
    try {
      const kv = await openKv(nc, 'scripts', { history: 5, create: true });
      assert.equal((await kv.status()).history, 5);
      await kv.put('a', enc.encode('1'));

      // A reader opens the existing bucket without creating it, and watches.
      const reader = await openKv(nc, 'scripts', { create: false });
      const watch = await reader.watch({ key: '>' });
      const seen: string[] = [];
      const watched = (async () => {
        for await (const e of watch) {
          seen.push(`${e.operation}:${e.key}=${e.string()}`);
          if (seen.length === 3) break;
        }
      })();
      await kv.put('b', enc.encode('2'));
      await kv.delete('a');
      await watched;
      assert.deepEqual(seen, ['PUT:a=1', 'PUT:b=2', 'DEL:a=']);
      const ops: string[] = [];
      for await (const e of await kv.history({ key: 'a' })) ops.push(e.operation);
      assert.deepEqual(ops, ['PUT', 'DEL']);

      // Creating again is idempotent and keeps the data.
      const again = await openKv(nc, 'scripts', { history: 5, create: true });
      assert.equal((await again.get('b'))?.string(), '2');
    } finally {
      await drainAndClose(nc);
    }
  });

  it('openKv without create fails clearly when the bucket is missing', async () => {
    const nc = await connectNats({ url: srv.url, name: 'test/kv2', ...quiet });
    try {
      await assert.rejects(openKv(nc, 'nope', { create: false }), (err: unknown) => {
        assert.ok(err instanceof KvError);
        assert.equal(err.message, 'KV bucket nope does not exist (it is created by its writer)');
        return true;
      });
    } finally {
      await drainAndClose(nc);
    }
  });

  it('ensureStream is idempotent and updates changed limits', async () => {
    const nc = await connectNats({ url: srv.url, name: 'test/stream', ...quiet });
    try {
      const a = await ensureStream(nc, { name: 'ITEMS', subjects: ['ws.items.>'], maxAge: 60_000, maxMsgs: 1000 });
      assert.equal(a.config.max_age, 60_000 * 1_000_000);
      const b = await ensureStream(nc, { name: 'ITEMS', subjects: ['ws.items.>'], maxAge: 60_000, maxMsgs: 1000 });
      assert.equal(b.created.toString(), a.created.toString());
      assert.equal(b.config.max_msgs, 1000);
      // Concurrent callers (replicas starting together) all succeed.
      const all = await Promise.all(
        Array.from({ length: 4 }, () => ensureStream(nc, { name: 'JOBS', subjects: ['ws.jobs.>'], maxMsgs: 10 })),
      );
      assert.ok(all.every((i) => i.config.name === 'JOBS'));
      // A changed limit or subject is applied to the existing stream.
      const c = await ensureStream(nc, { name: 'ITEMS', subjects: ['ws.items.>', 'ws.packets.>'], maxAge: 60_000, maxMsgs: 5000 });
      assert.equal(c.config.max_msgs, 5000);
      assert.deepEqual([...(c.config.subjects ?? [])].sort(), ['ws.items.>', 'ws.packets.>']);
      await assert.rejects(ensureStream(nc, { name: 'ITEMS', subjects: ['ws.items.>'], storage: 'memory' }), StreamError);
    } finally {
      await drainAndClose(nc);
    }
  });

  it('ensureStream explains a server without JetStream', async () => {
    const plain = await startNatsServer({ jetstream: false });
    const nc = await connectNats({ url: plain.url, name: 'test/nojs', ...quiet });
    try {
      await assert.rejects(ensureStream(nc, { name: 'X', subjects: ['x'] }), StreamError);
    } finally {
      await drainAndClose(nc);
      await plain.stop();
    }
  });
});
