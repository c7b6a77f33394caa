/**
 * Robustness: recorded conversations mutated at random (fixed seed and count)
 * never make the parser throw or emit malformed items; adversarial inputs end
 * in bounded time; memory stays bounded whatever the bodies.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { rng, type RecordedChunk } from '@wirescript/testing';
import type { Direction, ItemDraft, StreamParser } from '../types.ts';
import { http1LastInternalError, http1Stats, resetHttp1Stats } from './http1.ts';
import { CONN, give, harness, recordCorpus, recordingParser } from './http1-testkit.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
}

const TOKENS = [
  '\r\n', '\n', '\r\n\r\n', '\n\n', ' ', ':', '0\r\n\r\n', 'HTTP/1.1 200 OK\r\n', 'HTTP/1.1 100 Continue\r\n\r\n',
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n', 'GET / HTTP/1.1\r\n', 'HEAD /x HTTP/1.0\r\n\r\n', 'CONNECT a:1 HTTP/1.1\r\n\r\n',
  'Content-Length: 99999999999\r\n', 'Content-Length: -1\r\n', 'Content-Length: 5, 6\r\n', 'Transfer-Encoding: chunked\r\n',
  'Transfer-Encoding: gzip\r\n', 'Content-Encoding: gzip\r\n', 'Content-Encoding: br, deflate\r\n', 'Upgrade: websocket\r\n',
  'FFFFFFFFFFFFFFFF\r\n', 'ffff;ext=1\r\n', '__proto__: x\r\n', '\x00', '\xff\xfe', 'HTTP/1.', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
];

interface Limits {
  maxBodyBytes: number;
}

/** What every item must look like, whatever the input. */
function checkItem(it: ItemDraft, l: Limits): void {
  assert.equal(it.protocol.name, 'http');
  assert.ok(it.protocol.version === '1.1' || it.protocol.version === '1.0');
  assert.ok(it.request !== null || it.response !== null, 'an item has a request or a response');
  for (const n of [it.requestSize, it.responseSize, it.requestTsMs, it.responseTsMs]) assert.ok(Number.isFinite(n) && n >= 0);
  if (it.request !== null) {
    const r = it.request as Record<string, any>;
    assert.equal(typeof r.method, 'string');
    assert.equal(it.requestSize, r.headersSize + r.bodySize);
    if (r.postData) checkText(r.postData.text, r.postData.encoding === 'base64', l);
  } else assert.equal(typeof it.error, 'string');
  if (it.response !== null) {
    const r = it.response as Record<string, any>;
    assert.ok(Number.isInteger(r.status) && r.status >= 100 && r.status <= 999);
    assert.equal(it.responseSize, r.headersSize + r.bodySize);
    checkText(r.content.text, r.content.encoding === 'base64', l);
    assert.ok(r.content.size >= 0);
  }
  JSON.stringify(it);
}

function checkText(text: unknown, base64: boolean, l: Limits): void {
  assert.equal(typeof text, 'string');
  const bytes = base64 ? Buffer.from(text as string, 'base64').length : Buffer.byteLength(text as string);
  assert.ok(bytes <= l.maxBodyBytes, `body text of ${bytes} bytes, limit ${l.maxBodyBytes}`);
}

function mutate(chunks: RecordedChunk[], random: () => number): RecordedChunk[] {
  const out = chunks.map((c) => ({ ...c, data: Buffer.from(c.data) }));
  const pick = () => out[Math.floor(random() * out.length)];
  const n = 1 + Math.floor(random() * 4);
  for (let k = 0; k < n && out.length > 0; k++) {
    const c = pick();
    const at = Math.floor(random() * (c.data.length + 1));
    switch (Math.floor(random() * 8)) {
      case 0: // flip bytes
        for (let j = 0; j < 1 + random() * 4 && c.data.length > 0; j++) c.data[Math.floor(random() * c.data.length)] = Math.floor(random() * 256);
        break;
      case 1: // insert a token
        c.data = Buffer.concat([c.data.subarray(0, at), Buffer.from(TOKENS[Math.floor(random() * TOKENS.length)], 'latin1'), c.data.subarray(at)]);
        break;
      case 2: // delete a range
        c.data = Buffer.concat([c.data.subarray(0, at), c.data.subarray(at + 1 + Math.floor(random() * 60))]);
        break;
      case 3: // duplicate a range
        c.data = Buffer.concat([c.data.subarray(0, at), c.data.subarray(at, at + 200), c.data.subarray(at)]);
        break;
      case 4: // drop a chunk
        out.splice(out.indexOf(c), 1);
        break;
      case 5: // chunk sent the other way
        c.dir = (1 - c.dir) as 0 | 1;
        break;
      case 6: // cut the conversation short
        out.length = Math.floor(random() * out.length);
        break;
      case 7: // random bytes
        c.data = Buffer.concat([c.data.subarray(0, at), Buffer.from(Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256))), c.data.subarray(at)]);
        break;
    }
  }
  return out;
}

const corpus = recordCorpus();

test('fuzz: 600 mutated recorded conversations never throw, never emit malformed items', { timeout: 120_000 }, async () => {
  const streams = await corpus;
  assert.ok(streams.length >= 4, `${streams.length} recorded connections`);
  const random = rng(20240601);
  resetHttp1Stats();
  let items = 0;
  let withError = 0;
  const before = heapAfterGc();
  for (let iter = 0; iter < 600; iter++) {
    const base = streams[iter % streams.length];
    const chunks = iter < streams.length ? base : mutate(base, random);
    const limits = { maxBodyBytes: [0, 1, 100, 4096, 65536][Math.floor(random() * 5)] };
    let h2: StreamParser | null = null;
    const h = harness({ ...limits, pairTimeoutMs: Math.floor(random() * 50), decodeBodies: random() < 0.8 }, () => (h2 = recordingParser()));
    const swap = random() < 0.2;
    let ts = 1000;
    for (const c of chunks) {
      const dir = (swap ? 1 - c.dir : c.dir) as Direction;
      ts += Math.floor(random() * 20);
      const r = random();
      if (r < 0.05) h.parser.onGap(dir, 1 + Math.floor(random() * 3000), ts);
      if (r < 0.03) continue; // the gap replaced the chunk
      const piece = random() < 0.3 ? 1 + Math.floor(random() * 64) : c.data.length;
      for (let i = 0; i < c.data.length; i += Math.max(1, piece)) give(h.parser, dir, c.data.subarray(i, i + piece), ts);
      if (random() < 0.1) h.parser.onTick(ts + Math.floor(random() * 100));
    }
    h.parser.onClose(ts + 1, (['fin', 'rst', 'timeout', 'end'] as const)[Math.floor(random() * 4)]);
    const n = h.items.length;
    // closed: nothing more comes out, nothing throws
    give(h.parser, 0, Buffer.from('GET / HTTP/1.1\r\n\r\n'), ts + 2);
    h.parser.onGap(1, 10, ts + 2);
    h.parser.onTick(ts + 1e9);
    h.parser.onClose(ts + 3, 'fin');
    assert.equal(h.items.length, n, 'no items after close');
    for (const it of h.items) checkItem(it, limits);
    items += h.items.length;
    withError += h.items.filter((i) => i.error !== undefined).length;
    void h2;
  }
  const s = http1Stats();
  assert.equal(s.internalErrors, 0, http1LastInternalError());
  assert.ok(items > 1000, `${items} items`);
  assert.ok(withError > 50 && s.resyncs > 50 && s.parseErrors > 20, `errors surfaced: ${withError} items, ${JSON.stringify(s)}`);
  assert.ok(heapAfterGc() - before < 64 * 1024 * 1024, 'nothing retained across parsers');
});

test('adversarial inputs: bounded time and memory, counted, later messages still parsed', { timeout: 60_000 }, () => {
  const cases: [string, Buffer][] = [
    ['2 MB of start lines with bad lengths', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n'.repeat(50_000))],
    ['2 MB of status lines without a blank line', Buffer.from('HTTP/1.1 200 OK\r\n'.repeat(120_000))],
    ['2 MB of request lines and garbage', Buffer.from('xGET /a HTTP/1.1\r\nHost: a\r\nContent-Length: q\r\n\r\n'.repeat(40_000))],
    ['100k one-byte chunks', Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), Buffer.from('1\r\na\r\n'.repeat(100_000)), Buffer.from('0\r\n\r\n')])],
    ['huge chunk size', Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFF\r\nabc')],
    ['chunk-size line without end', Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1'), Buffer.alloc(100_000, '0')])],
    ['header line without end', Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX: '), Buffer.alloc(500_000, 'x')])],
    ['many headers', Buffer.from(`HTTP/1.1 200 OK\r\n${'X-A: 1\r\n'.repeat(8000)}\r\n`)],
    ['1 MB of random bytes', Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 2654435761) >>> 24))],
    ['1 MB of "HTTP/1." fragments', Buffer.from('HTTP/1.HTTP/1.1 2'.repeat(60_000))],
    ['trailers forever', Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n'), Buffer.from('T: x\r\n'.repeat(10_000))])],
  ];
  const tail = Buffer.from('HTTP/1.1 204 No Content\r\n\r\n');
  for (const [what, bytes] of cases) {
    for (const piece of [bytes.length, 1460, ...(bytes.length <= 600_000 ? [1] : [])]) {
      resetHttp1Stats();
      const h = harness({ maxBodyBytes: 4096 });
      give(h.parser, 0, Buffer.from('GET /first HTTP/1.1\r\nHost: a\r\n\r\n'), 1);
      for (let i = 0; i < bytes.length; i += piece) give(h.parser, 1, bytes.subarray(i, i + piece), 2);
      give(h.parser, 0, Buffer.from('GET /last HTTP/1.1\r\nHost: a\r\n\r\n'), 3);
      give(h.parser, 1, tail, 4);
      h.parser.onClose(5, 'fin');
      assert.equal(http1Stats().internalErrors, 0, `${what}: ${http1LastInternalError()}`);
      for (const it of h.items) checkItem(it, { maxBodyBytes: 4096 });
      assert.ok(h.items.length >= 1, what);
    }
  }
});

test('memory: 2000 connections each in the middle of a 1 GB body keep at most maxBodyBytes each', { timeout: 60_000 }, () => {
  const piece = Buffer.alloc(16 * 1024, 'b');
  const parsers: StreamParser[] = [];
  const before = heapAfterGc();
  for (let i = 0; i < 2000; i++) {
    const h = harness({ maxBodyBytes: 4096 }, () => null, { ...CONN, id: i });
    give(h.parser, 0, Buffer.from('POST /upload HTTP/1.1\r\nHost: u\r\nContent-Length: 1073741824\r\n\r\n'), 1);
    for (let k = 0; k < 16; k++) h.parser.onData(0, piece, 2); // 256 KB each, 512 MB in all
    parsers.push(h.parser);
  }
  const grown = heapAfterGc() - before;
  assert.ok(grown < 40 * 1024 * 1024, `2000 in-flight bodies hold ${(grown / 1048576).toFixed(1)} MB`);
  assert.equal(parsers.length, 2000);
});

test('memory: one close-delimited 256 MB response body flows through with flat memory, sizes exact', { timeout: 60_000 }, () => {
  const h = harness({ maxBodyBytes: 64 * 1024 });
  give(h.parser, 0, Buffer.from('GET /stream HTTP/1.1\r\nHost: s\r\n\r\n'), 1);
  give(h.parser, 1, Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n'), 2);
  const piece = Buffer.alloc(64 * 1024, 's');
  const before = heapAfterGc();
  let peak = 0;
  for (let i = 0; i < 4096; i++) {
    h.parser.onData(1, piece, 3);
    if (i % 512 === 0) peak = Math.max(peak, heapAfterGc() - before);
  }
  assert.ok(peak < 16 * 1024 * 1024, `peak growth ${(peak / 1048576).toFixed(1)} MB`);
  h.parser.onClose(4, 'fin');
  assert.equal(h.items.length, 1);
  const r = h.items[0].response as Record<string, any>;
  assert.equal(r.bodySize, 4096 * 64 * 1024);
  assert.equal(r.content.size, 4096 * 64 * 1024);
  assert.equal(r.content.text.length, 64 * 1024);
  assert.equal(r.content.truncated, true);
});
