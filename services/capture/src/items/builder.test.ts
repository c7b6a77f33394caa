import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ItemBuilder } from './builder.ts';
import type { ConnectionInfo, ItemDraft } from '../types.ts';

const conn: ConnectionInfo = { id: 42, client: { ip: '10.0.0.1', port: 51000 }, server: { ip: '10.0.0.2', port: 8080 }, ipVersion: 4, transport: 'tcp', handshakeSeen: true };
const draft = (req: number, res: number): ItemDraft => ({
  protocol: { name: 'http', version: '1.1', abbr: 'HTTP', longName: 'HTTP/1.1', macro: 'http' },
  request: { method: 'GET' }, response: { status: 200 }, requestSize: 10, responseSize: 20, requestTsMs: req, responseTsMs: res,
});

test('items have the Kubeshark shape: identity, endpoints with string ports, timestamps and elapsed time', () => {
  const b = new ItemBuilder({ node: { name: 'n1', ip: '10.0.0.9' }, worker: 'w1', resolve: (ip) => (ip === '10.0.0.2' ? { name: 'api-0', namespace: 'shop' } : undefined) });
  const { item, id, protocol, timestampMs } = b.build(conn, draft(1_700_000_000_123.4, 1_700_000_000_125.9));
  assert.equal(protocol, 'http');
  assert.equal(item.id, id);
  assert.equal(item.index, 0);
  assert.equal(item.stream, '00002a');
  assert.deepEqual(item.protocol, { name: 'http', version: '1.1', abbr: 'HTTP', longName: 'HTTP/1.1', macro: 'http', layer3: 'IP', layer4: 'TCP' });
  assert.deepEqual(item.src, { ip: '10.0.0.1', port: '51000', name: '', namespace: '' });
  assert.deepEqual(item.dst, { ip: '10.0.0.2', port: '8080', name: 'api-0', namespace: 'shop' });
  assert.equal(item.timestamp, 1_700_000_000_123);
  assert.equal(timestampMs, 1_700_000_000_123);
  assert.equal(item.elapsedTime, 2.5);
  assert.equal(item.error, null);
  assert.equal(b.build(conn, draft(1, 2)).item.index, 1);
});

test('startTime equals Date.toISOString for every millisecond, across second, day and year boundaries', () => {
  const b = new ItemBuilder({ node: { name: 'n', ip: '' }, worker: 'w' });
  const starts = [0, 999, 1000, 1001, 86_399_999, 86_400_000, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), 1_700_000_000_000.7, 1_700_000_000_009.2];
  for (let t = 1_700_000_000_000; t < 1_700_000_003_000; t += 7) starts.push(t);
  for (const t of starts) assert.equal(b.build(conn, draft(t, 0)).item.startTime, new Date(t).toISOString(), String(t));
});

test('a response without request is timed from the response; elapsedTime is 0', () => {
  const b = new ItemBuilder({ node: { name: 'n', ip: '' }, worker: 'w' });
  const { item } = b.build({ ...conn, ipVersion: 6, transport: 'udp' }, { ...draft(0, 5_000.25), request: null, error: 'response without request' });
  assert.equal(item.timestamp, 5000);
  assert.equal(item.elapsedTime, 0);
  assert.equal(item.error, 'response without request');
  assert.deepEqual([(item.protocol as { layer3: string }).layer3, (item.protocol as { layer4: string }).layer4], ['IPv6', 'UDP']);
});
