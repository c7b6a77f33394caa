/**
 * Real traffic on loopback, captured live by the project's own capture (cap)
 * and, side by side, by tcpdump into a pcap that the file reader replays:
 * the items must match the generator's own ground truth exactly.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dns from 'node:dns';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CapturePipeline, LiveCapture, readCaptureFile, type CapturedItem } from '@wirescript/capture';
import { dnsAnswer, startTcpdump } from '@wirescript/testing';
import { waitFor } from './helpers.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'wirescript-capture-'));

type Item = Record<string, any>;

/** Live capture on lo with a BPF filter; items collected in memory. */
function captureLive(filter: string) {
  const items: Item[] = [];
  const pipeline = new CapturePipeline({ node: { name: 'test', ip: '127.0.0.1' }, worker: 'test', onItem: (it: CapturedItem) => items.push(it.item) });
  const live = new LiveCapture({ device: 'lo', filter, bufferBytes: 32 * 1024 * 1024 });
  live.start((f) => pipeline.onFrame(f));
  return {
    items,
    pipeline,
    stop() {
      live.stop();
      pipeline.end();
    },
  };
}

async function replay(file: string): Promise<Item[]> {
  const items: Item[] = [];
  const pipeline = new CapturePipeline({ node: { name: 'test', ip: '' }, worker: 'test', onItem: (it: CapturedItem) => items.push(it.item) });
  await readCaptureFile(file, (f) => pipeline.onFrame(f));
  pipeline.end();
  return items;
}

function countBy(items: Item[], key: (it: Item) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[key(it)] = (out[key(it)] ?? 0) + 1;
  return out;
}

const listen = (server: net.Server) => new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));

describe('live capture of real loopback traffic', () => {
  const closers: (() => unknown)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  test('HTTP/1.1: keep-alive, methods, paths, statuses, bodies, HEAD and 204 match the ground truth exactly', async () => {
    const server = http.createServer((req, res) => {
      const status = Number(new URL(req.url!, 'http://x').searchParams.get('status') ?? 200);
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 204 || req.method === 'HEAD' ? undefined : JSON.stringify({ path: req.url, got: body.length }));
      });
    });
    const port = await listen(server);
    closers.push(() => server.close());
    const filter = `tcp port ${port}`;
    const file = path.join(dir, 'http1.pcap');
    // tcpdump writes a pcap of the same traffic: an independent capture of the same packets.
    const dump = await startTcpdump({ filter, file, probePort: port });
    const cap = captureLive(filter);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const truth: Record<string, number> = {};
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD'];
    const statuses = [200, 201, 204, 404, 500];
    const N = 400;
    await Promise.all(Array.from({ length: N }, (_, i) => new Promise<void>((resolve, reject) => {
      const method = methods[i % methods.length];
      const status = statuses[(i >> 2) % statuses.length];
      const p = `/api/v1/thing/${i % 7}`;
      const key = `${method} ${p} ${status}`;
      truth[key] = (truth[key] ?? 0) + 1;
      const req = http.request({ host: '127.0.0.1', port, method, path: `${p}?status=${status}`, agent, headers: { 'content-type': 'text/plain' } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end(method === 'POST' || method === 'PUT' ? `payload-${i}` : undefined);
    })));
    agent.destroy();
    await waitFor(`${N} HTTP items from live capture`, () => cap.items.length >= N, 15_000);
    await new Promise((r) => setTimeout(r, 200));
    cap.stop();
    await dump.stop();
    const key = (it: Item) => `${it.request?.method} ${it.request?.path} ${it.response?.status}`;
    const bad = cap.items.filter((it) => it.error !== null || !it.request || !it.response);
    assert.deepEqual(bad.map((it) => ({ error: it.error, req: it.request?.method, res: it.response?.status, stream: it.stream })), [], 'no item with an error');
    assert.deepEqual(countBy(cap.items, key), truth);
    assert.ok(cap.items.every((it) => it.protocol.name === 'http' && it.protocol.version === '1.1' && it.error === null));
    const post = cap.items.find((it) => it.request.method === 'POST' && it.response.status === 201);
    if (post) assert.match(post.request.postData.text, /^payload-\d+$/);
    const replayed = await replay(file);
    assert.deepEqual(countBy(replayed, key), truth, 'the tcpdump pcap replayed through the file reader gives the same calls');
  });

  test('HTTP/2 cleartext (prior knowledge): streams paired, statuses and paths match', async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      const status = Number(new URL(String(headers[':path']), 'http://x').searchParams.get('status') ?? 200);
      stream.respond({ ':status': status, 'content-type': 'text/plain' });
      stream.end(`hello ${headers[':path']}`);
    });
    const port = await listen(server);
    closers.push(() => server.close());
    const cap = captureLive(`tcp port ${port}`);
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const truth: Record<string, number> = {};
    const N = 150;
    await Promise.all(Array.from({ length: N }, (_, i) => new Promise<void>((resolve, reject) => {
      const status = [200, 404, 503][i % 3];
      const p = `/h2/${i % 5}`;
      truth[`GET ${p} ${status}`] = (truth[`GET ${p} ${status}`] ?? 0) + 1;
      const req = client.request({ ':path': `${p}?status=${status}` });
      req.on('response', () => {});
      req.resume();
      req.on('end', () => resolve());
      req.on('error', reject);
      req.end();
    })));
    client.close();
    await waitFor(`${N} HTTP/2 items`, () => cap.items.length >= N, 15_000);
    cap.stop();
    assert.deepEqual(countBy(cap.items, (it) => `${it.request.method} ${it.request.path} ${it.response.status}`), truth);
    assert.ok(cap.items.every((it) => it.protocol.version === '2.0' && it.protocol.abbr === 'HTTP/2'));
  });

  test('DNS over UDP: a real resolver against a real server; answers and NXDOMAIN match', async () => {
    const sock = dgram.createSocket('udp4');
    const names = new Map([['a.test', '10.1.2.3'], ['b.test', '10.9.8.7']]);
    sock.on('message', (msg, rinfo) => sock.send(dnsAnswer(msg, names), rinfo.port, rinfo.address));
    const port = await new Promise<number>((r) => sock.bind(0, '127.0.0.1', () => r(sock.address().port)));
    closers.push(() => sock.close());
    const cap = captureLive(`udp port ${port}`);
    const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    const queries = ['a.test', 'b.test', 'nope.test', 'a.test'];
    const results = await Promise.allSettled(queries.map((q) => resolver.resolve4(q)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
    await waitFor('4 DNS items', () => cap.items.length >= 4, 10_000);
    cap.stop();
    const byName = countBy(cap.items, (it) => `${it.request.questions[0].name} ${it.request.questions[0].type} ${it.response.code}`);
    assert.deepEqual(byName, { 'a.test A NOERROR': 2, 'b.test A NOERROR': 1, 'nope.test A NXDOMAIN': 1 });
    const a = cap.items.find((it) => it.request.questions[0].name === 'b.test')!;
    assert.equal(a.response.answers[0].ip, '10.9.8.7');
    assert.equal(a.protocol.name, 'dns');
  });

  test('Redis: commands against the real server at 127.0.0.1:6379 are dissected with their replies', async () => {
    const prefix = `ws-test-${process.pid}-${Date.now()}`;
    const sock = net.connect(6379, '127.0.0.1');
    await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
    const local = sock.localPort!;
    const cap = captureLive(`tcp port 6379 and tcp port ${local}`);
    await new Promise((r) => setTimeout(r, 100));
    const cmd = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    const commands = [cmd('SET', `${prefix}:a`, 'hello'), cmd('GET', `${prefix}:a`), cmd('INCR', `${prefix}:n`), cmd('GET', `${prefix}:missing`), cmd('DEL', `${prefix}:a`, `${prefix}:n`)];
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.write(commands.join(''));
    await waitFor('5 replies', () => got.split('\r\n').length >= 7, 5_000);
    sock.end();
    await waitFor('5 redis items', () => cap.items.length >= 5, 10_000);
    cap.stop();
    const seen = cap.items.map((it) => `${it.request.command} ${it.request.key}`);
    assert.deepEqual(seen, [`SET ${prefix}:a`, `GET ${prefix}:a`, `INCR ${prefix}:n`, `GET ${prefix}:missing`, `DEL ${prefix}:a`]);
    assert.equal(cap.items[1].response.value, 'hello');
    assert.equal(cap.items[2].response.value, 1);
    assert.equal(cap.items[0].protocol.name, 'redis');
  });
});
