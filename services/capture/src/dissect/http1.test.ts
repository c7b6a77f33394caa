/**
 * HTTP/1 dissector on real loopback traffic: node:http clients and servers
 * (raw sockets for the edge cases) talk through the recording proxy; the
 * recorded chunks are fed to a parser and the items compared with what the
 * server received and the client got.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import zlib from 'node:zlib';
import type { RecordedChunk } from '@wirescript/testing';
import type { ItemDraft } from '../types.ts';
import { http1Stats, resetHttp1Stats } from './http1.ts';
import { CONN, coalesce, feed, harness, keepAliveAgent, rawClient, record, recordingParser, req, request, res, retime, withTimeout } from './http1-testkit.ts';

/** rawHeaders -> { name as sent: value }, repeated names joined with ', ' (the item's rule). */
function headerObject(raw: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) out[raw[i]] = raw[i] in out ? `${out[raw[i]]}, ${raw[i + 1]}` : raw[i + 1];
  return out;
}

function bytesOf(chunks: readonly RecordedChunk[], dir: 0 | 1): number {
  return chunks.filter((c) => c.dir === dir).reduce((a, c) => a + c.data.length, 0);
}

function errors(items: readonly ItemDraft[]): string[] {
  return items.filter((i) => i.error !== undefined).map((i) => i.error as string);
}

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
}

/** A keep-alive conversation of 24 calls (GET/POST/PUT/DELETE, query strings, cookies, JSON bodies, statuses). */
async function recordKeepAlive(): Promise<{ chunks: RecordedChunk[]; seen: Seen[]; got: { status: number; rawHeaders: string[]; body: Buffer }[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((rq, rs) => {
    const parts: Buffer[] = [];
    rq.on('data', (d: Buffer) => parts.push(d));
    rq.on('end', () => {
      seen.push({ method: rq.method ?? '', url: rq.url ?? '', rawHeaders: rq.rawHeaders, body: Buffer.concat(parts) });
      const n = seen.length;
      const status = n % 5 === 0 ? 404 : n % 7 === 0 ? 201 : 200;
      const body = JSON.stringify({ echo: rq.url, n, text: 'héllo wörld ✓' });
      rs.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Set-Cookie': ['sid=abc123; Path=/; HttpOnly', `seq=${n}`], 'X-Multi': ['one', 'two'] });
      rs.end(body);
    });
  });
  const got: { status: number; rawHeaders: string[]; body: Buffer }[] = [];
  const rec = await record(server, async (port) => {
    const agent = keepAliveAgent();
    const methods = ['GET', 'POST', 'PUT', 'DELETE'];
    for (let i = 0; i < 24; i++) {
      const method = methods[i % 4];
      const body = method === 'POST' || method === 'PUT' ? JSON.stringify({ i, name: `item ${i}`, tags: ['a', 'b'] }) : undefined;
      const r = await new Promise<{ status: number; rawHeaders: string[]; body: Buffer }>((resolve, reject) => {
        const cr = http.request({
          host: '127.0.0.1', port, agent, method,
          path: `/api/v1/items/${i}/detail?q=a%20b&tag=x&tag=y&plus=1+2&empty=`,
          headers: { Cookie: `a=1; b=two; n=${i}`, 'X-Trace-Id': `trace-${i}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        }, (rs) => {
          const parts: Buffer[] = [];
          rs.on('data', (d: Buffer) => parts.push(d));
          rs.on('end', () => resolve({ status: rs.statusCode ?? 0, rawHeaders: rs.rawHeaders, body: Buffer.concat(parts) }));
        });
        cr.on('error', reject);
        cr.end(body);
      });
      got.push(r);
    }
    agent.destroy();
  });
  assert.equal(rec.connections.length, 1, 'one keep-alive connection');
  return { chunks: rec.connections[0].chunks, seen, got };
}

const keepAlive = recordKeepAlive();

test('keep-alive node:http traffic: every call becomes one item matching what was sent and received', async () => {
  const { chunks, seen, got } = await keepAlive;
  resetHttp1Stats();
  const items = feed(harness(), chunks);
  assert.equal(items.length, 24);
  assert.deepEqual(errors(items), []);
  for (let i = 0; i < 24; i++) {
    const it = items[i];
    const rq = req(it);
    const rs = res(it);
    assert.deepEqual(it.protocol, { name: 'http', version: '1.1', abbr: 'HTTP', longName: 'Hypertext Transfer Protocol -- HTTP/1.1', macro: 'http' });
    assert.equal(rq.method, seen[i].method);
    assert.equal(rq.url, seen[i].url);
    assert.equal(rq.path, `/api/v1/items/${i}/detail`);
    assert.deepEqual(rq.pathSegments, ['api', 'v1', 'items', String(i), 'detail']);
    assert.equal(rq.targetUri, `http://${headerObject(seen[i].rawHeaders).Host}${seen[i].url}`);
    assert.equal(rq.httpVersion, 'HTTP/1.1');
    assert.deepEqual(rq.headers, headerObject(seen[i].rawHeaders));
    assert.deepEqual(rq.cookies, { a: '1', b: 'two', n: String(i) });
    assert.deepEqual(rq.queryString, { q: 'a b', tag: ['x', 'y'], plus: '1 2', empty: '' });
    if (seen[i].body.length > 0) {
      assert.deepEqual(rq.postData, { mimeType: 'application/json', text: seen[i].body.toString() });
    } else assert.equal(rq.postData, undefined);
    assert.equal(rq.bodySize, seen[i].body.length);
    assert.equal(rs.status, got[i].status);
    assert.equal(rs.statusText, http.STATUS_CODES[got[i].status]);
    assert.equal(rs.httpVersion, 'HTTP/1.1');
    assert.deepEqual(rs.headers, headerObject(got[i].rawHeaders));
    assert.deepEqual(rs.cookies, { sid: 'abc123', seq: String(i + 1) });
    assert.deepEqual(rs.content, { encoding: '', mimeType: 'application/json; charset=utf-8', size: got[i].body.length, text: got[i].body.toString('utf8') });
    // node:http chunks these responses: the wire size includes the framing
    assert.equal(rs.headers['Transfer-Encoding'], 'chunked');
    assert.equal(rs.bodySize, got[i].body.length + `${got[i].body.length.toString(16)}\r\n\r\n0\r\n\r\n`.length);
    assert.equal(rs.redirectURL, '');
    assert.equal(it.requestSize, rq.headersSize + rq.bodySize);
    assert.equal(it.responseSize, rs.headersSize + rs.bodySize);
    assert.ok(it.requestTsMs > 0 && it.responseTsMs >= it.requestTsMs);
  }
  // every byte on the wire is accounted to exactly one message
  assert.equal(items.reduce((a, i) => a + i.requestSize, 0), bytesOf(chunks, 0));
  assert.equal(items.reduce((a, i) => a + i.responseSize, 0), bytesOf(chunks, 1));
  const s = http1Stats();
  assert.equal(s.items, 24);
  assert.equal(s.requests, 24);
  assert.equal(s.parseErrors + s.resyncs + s.bytesSkipped + s.internalErrors, 0);
});

test('byte-at-a-time, odd-sized pieces and whole-direction buffers all give the same items', async () => {
  const { chunks } = await keepAlive;
  const ref = JSON.stringify(feed(harness(), chunks));
  assert.equal(JSON.stringify(feed(harness(), chunks, { pieceSize: 1 })), ref);
  assert.equal(JSON.stringify(feed(harness(), chunks, { pieceSize: 7 })), ref);
  assert.equal(JSON.stringify(feed(harness(), chunks, { pieceSize: 1000 })), ref);
  // one buffer per direction change keeps the times of the first chunk of each run
  const merged = feed(harness(), coalesce(chunks));
  assert.equal(merged.length, 24);
  assert.deepEqual(merged.map((i) => req(i).url), JSON.parse(ref).map((i: ItemDraft) => req(i).url));
});

test('directions swapped by the reassembly (no SYN seen): content decides, items are the same', async () => {
  const { chunks } = await keepAlive;
  const ref = feed(harness(), chunks);
  const swapped = feed(harness({}, () => null, { ...CONN, handshakeSeen: false }), chunks, { swap: true });
  assert.equal(swapped.length, 24);
  assert.deepEqual(errors(swapped), []);
  assert.deepEqual(swapped.map((i) => [i.request, i.response]), ref.map((i) => [i.request, i.response]));
  // and when the first bytes seen are a status line (the first request was not captured)
  const timed = retime(chunks);
  const firstReq = timed.findIndex((c) => c.dir === 0);
  const late = feed(harness({}, () => null, { ...CONN, handshakeSeen: false }), timed.filter((_, i) => i !== firstReq), { swap: true });
  assert.equal(late.length, 24);
  assert.equal(late[0].request, null);
  assert.equal(res(late[0]).status, res(ref[0]).status);
  assert.deepEqual(late.slice(1).map((i) => [i.request, i.response]), ref.slice(1).map((i) => [i.request, i.response]));
});

test('compressed responses (gzip, deflate, raw deflate, br) are decoded; encoding and wire sizes kept', async () => {
  const text = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ i, name: `row ${i}`, note: 'compress me, compress me' })));
  const bodies: Record<string, [string, Buffer]> = {
    '/gzip': ['gzip', zlib.gzipSync(text)],
    '/deflate': ['deflate', zlib.deflateSync(text)],
    '/rawdeflate': ['deflate', zlib.deflateRawSync(text)],
    '/br': ['br', zlib.brotliCompressSync(text)],
    '/gzip-chunked': ['gzip', zlib.gzipSync(text)],
  };
  const server = http.createServer((rq, rs) => {
    const [enc, body] = bodies[rq.url ?? ''];
    if (rq.url === '/gzip-chunked') {
      rs.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': enc });
      rs.write(body.subarray(0, 100));
      rs.end(body.subarray(100));
    } else {
      rs.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': enc, 'Content-Length': body.length });
      rs.end(body);
    }
  });
  const rec = await record(server, async (port) => {
    const agent = keepAliveAgent();
    for (const path of Object.keys(bodies)) {
      const r = await request(port, { agent, path, headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
      assert.deepEqual(r.body, bodies[path][1]);
    }
    agent.destroy();
  });
  const items = feed(harness(), rec.connections[0].chunks);
  assert.deepEqual(items.map((i) => req(i).path), Object.keys(bodies));
  for (const it of items) {
    const [enc, body] = bodies[req(it).path];
    const c = res(it).content;
    assert.equal(c.encoding, enc);
    assert.equal(c.text, text, `${req(it).path} decoded`);
    assert.equal(c.size, Buffer.byteLength(text));
    assert.equal(c.truncated, undefined);
    if (req(it).path !== '/gzip-chunked') assert.equal(res(it).bodySize, body.length);
    else assert.ok(res(it).bodySize > body.length, 'chunk framing counted on the wire');
  }
  // decoding off: the compressed bytes are kept as base64
  const raw = feed(harness({ decodeBodies: false }), rec.connections[0].chunks);
  assert.equal(res(raw[0]).content.encoding, 'base64');
  assert.deepEqual(Buffer.from(res(raw[0]).content.text, 'base64'), bodies['/gzip'][1]);
});

test('chunked bodies both ways, with trailers, de-chunked', async () => {
  let gotBody = '';
  const server = http.createServer((rq, rs) => {
    const parts: Buffer[] = [];
    rq.on('data', (d: Buffer) => parts.push(d));
    rq.on('end', () => {
      gotBody = Buffer.concat(parts).toString();
      rs.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Checksum' });
      rs.write('first part, ');
      rs.write('second part, ');
      rs.addTrailers({ 'X-Checksum': 'c0ffee', 'X-Other': 'o' });
      rs.end('last');
    });
  });
  let trailers: NodeJS.Dict<string> = {};
  const rec = await record(server, async (port) => {
    await new Promise<void>((resolve, reject) => {
      const cr = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'Content-Type': 'text/plain' } }, (rs) => {
        rs.resume();
        rs.on('end', () => { trailers = rs.trailers; resolve(); });
      });
      cr.on('error', reject);
      cr.write('alpha ');
      cr.write('beta ');
      cr.end('gamma');
    });
  });
  assert.equal(trailers['x-checksum'], 'c0ffee');
  const chunks = rec.connections[0].chunks;
  const items = feed(harness(), chunks);
  assert.equal(items.length, 1);
  assert.deepEqual(errors(items), []);
  const rq = req(items[0]);
  assert.equal(rq.headers['Transfer-Encoding'], 'chunked');
  assert.deepEqual(rq.postData, { mimeType: 'text/plain', text: gotBody });
  assert.equal(gotBody, 'alpha beta gamma');
  const rs = res(items[0]);
  assert.equal(rs.content.text, 'first part, second part, last');
  assert.equal(rs.content.size, 'first part, second part, last'.length);
  assert.deepEqual(rs.trailers, { 'X-Checksum': 'c0ffee', 'X-Other': 'o' });
  assert.equal(items[0].requestSize, bytesOf(chunks, 0));
  assert.equal(items[0].responseSize, bytesOf(chunks, 1));
});

test('HEAD, 204 and 304 responses have no body; the keep-alive framing stays right after them', async () => {
  const server = http.createServer((rq, rs) => {
    if (rq.url === '/nocontent') { rs.writeHead(204); rs.end(); return; }
    if (rq.url === '/cached') { rs.writeHead(304, { ETag: '"v1"' }); rs.end(); return; }
    if (rq.url === '/moved') { rs.writeHead(302, { Location: '/new/place?x=1', 'Content-Length': 0 }); rs.end(); return; }
    const body = 'x'.repeat(1234);
    rs.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    rs.end(rq.method === 'HEAD' ? undefined : body);
  });
  const paths = [['HEAD', '/big'], ['GET', '/nocontent'], ['GET', '/cached'], ['GET', '/moved'], ['GET', '/big'], ['HEAD', '/big'], ['GET', '/big']];
  const rec = await record(server, async (port) => {
    const agent = keepAliveAgent();
    for (const [method, path] of paths) await request(port, { agent, method, path });
    agent.destroy();
  });
  const items = feed(harness(), rec.connections[0].chunks);
  assert.deepEqual(errors(items), []);
  assert.deepEqual(items.map((i) => [req(i).method, req(i).path, res(i).status, res(i).content.size]), [
    ['HEAD', '/big', 200, 0], ['GET', '/nocontent', 204, 0], ['GET', '/cached', 304, 0], ['GET', '/moved', 302, 0],
    ['GET', '/big', 200, 1234], ['HEAD', '/big', 200, 0], ['GET', '/big', 200, 1234],
  ]);
  assert.equal(res(items[0]).headers['Content-Length'], '1234');
  assert.equal(res(items[3]).redirectURL, '/new/place?x=1');
  assert.equal(res(items[4]).content.text, 'x'.repeat(1234));
});

test('100-continue: the interim response is not the answer; the body and the final response pair up', async () => {
  const server = http.createServer((rq, rs) => {
    const parts: Buffer[] = [];
    rq.on('data', (d: Buffer) => parts.push(d));
    rq.on('end', () => { rs.writeHead(201, { 'Content-Type': 'text/plain' }); rs.end(`stored ${Buffer.concat(parts).length}`); });
  });
  server.on('checkContinue', (rq, rs) => { rs.writeContinue(); server.emit('request', rq, rs); });
  const rec = await record(server, async (port) => {
    await new Promise<void>((resolve, reject) => {
      const cr = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/blob', headers: { Expect: '100-continue', 'Content-Type': 'text/plain', 'Content-Length': 11 } }, (rs) => {
        rs.resume();
        rs.on('end', () => resolve());
      });
      cr.on('continue', () => cr.end('hello world'));
      cr.on('error', reject);
      cr.flushHeaders();
    });
  });
  const chunks = rec.connections[0].chunks;
  assert.ok(Buffer.concat(chunks.filter((c) => c.dir === 1).map((c) => c.data)).toString().startsWith('HTTP/1.1 100 Continue'));
  resetHttp1Stats();
  const items = feed(harness(), chunks);
  assert.equal(items.length, 1);
  assert.deepEqual(errors(items), []);
  assert.equal(req(items[0]).postData.text, 'hello world');
  assert.equal(res(items[0]).status, 201);
  assert.equal(res(items[0]).content.text, 'stored 11');
  assert.equal(http1Stats().interimResponses, 1);
});

test('Upgrade: websocket: the handshake is an item, the frames after it are not parsed', async () => {
  const server = http.createServer((_rq, rs) => rs.end('plain'));
  server.on('upgrade', (_rq, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
    // a server frame whose payload looks like HTTP: it must not become an item
    const payload = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
    socket.on('data', () => socket.end());
  });
  const rec = await record(server, async (port) => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const handshake = `GET /chat HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    const frame = Buffer.concat([Buffer.from([0x81, 0x80 | 20, 1, 2, 3, 4]), Buffer.from('GET /x HTTP/1.1\r\n\r\n!').map((b, i) => b ^ [1, 2, 3, 4][i % 4])]);
    await rawClient(port, [handshake, frame], { pauseMs: 50 });
  });
  resetHttp1Stats();
  const items = feed(harness(), rec.connections[0].chunks);
  assert.equal(items.length, 1);
  assert.deepEqual(errors(items), []);
  assert.equal(req(items[0]).headers.Upgrade, 'websocket');
  assert.equal(res(items[0]).status, 101);
  assert.equal(res(items[0]).statusText, 'Switching Protocols');
  const s = http1Stats();
  assert.equal(s.upgradesOther, 1);
  assert.ok(s.bytesIgnored > 40, `bytes after the upgrade ignored (${s.bytesIgnored})`);
  assert.equal(s.requests + s.responses, 2);
});

/** An h2c upgrade: the server answers 101 and speaks (a little) HTTP/2; the client sends the preface after the 101. */
async function recordH2c(): Promise<{ chunks: RecordedChunk[]; serverH2: Buffer; clientH2: Buffer }> {
  const settings = Buffer.from([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
  const serverH2 = Buffer.concat([settings, Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0])]);
  const clientH2 = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), settings]);
  const server = http.createServer((_rq, rs) => rs.end('no'));
  server.on('upgrade', (_rq, socket: net.Socket) => {
    socket.write(Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'), serverH2]));
    let n = 0;
    socket.on('data', (d: Buffer) => { n += d.length; if (n >= clientH2.length) socket.end(); });
  });
  const rec = await record(server, async (port) => {
    const up = `GET /h2c HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n`;
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(up);
    let seen = 0;
    await withTimeout(new Promise<void>((r) => sock.on('data', (d: Buffer) => { seen += d.length; if (seen > 70) r(); })), 5000, '101');
    sock.write(clientH2);
    await withTimeout(new Promise<void>((r) => sock.once('close', () => r())), 5000, 'h2c close');
  });
  return { chunks: rec.connections[0].chunks, serverH2, clientH2 };
}

test('Upgrade: h2c hands the stream to the http2 dissector after the 101, in both directions', async () => {
  const { chunks, serverH2, clientH2 } = await recordH2c();
  for (const order of ['recorded', 'client first'] as const) {
    // "client first": all client bytes (upgrade request and preface) arrive before the 101: held until the 101 decides
    const input = order === 'recorded' ? chunks : [...chunks.filter((c) => c.dir === 0), ...chunks.filter((c) => c.dir === 1)].map((c, i) => ({ ...c, tsMs: 1000 + i }));
    const h2 = recordingParser();
    resetHttp1Stats();
    const h = harness({}, (name) => (name === 'http2' ? h2 : null));
    const items = feed(h, input);
    assert.deepEqual(h.switched, ['http2'], order);
    assert.equal(items.length, 1, order);
    assert.equal(res(items[0]).status, 101);
    assert.equal(req(items[0]).headers['HTTP2-Settings'], 'AAMAAABkAAQCAAAAAAIAAAAA');
    assert.deepEqual(Buffer.concat(h2.data[1]), serverH2, `${order}: server bytes after the 101`);
    assert.deepEqual(Buffer.concat(h2.data[0]), clientH2, `${order}: client bytes after the upgrade request`);
    assert.equal(h2.closed, 'fin');
    assert.equal(http1Stats().upgradesH2c, 1);
  }
  // as the reassembly does it: after switchTo the new parser gets the stream directly, this one gets no more calls
  {
    const h2 = recordingParser();
    let handedOver = false;
    const h = harness({}, () => { handedOver = true; return h2; });
    for (const c of chunks) {
      if (handedOver) h2.onData(c.dir, c.data, c.tsMs);
      else h.parser.onData(c.dir, c.data, c.tsMs);
    }
    assert.equal(h.items.length, 1, 'the upgrade item is out without onClose');
    assert.deepEqual(Buffer.concat(h2.data[1]), serverH2);
    assert.deepEqual(Buffer.concat(h2.data[0]), clientH2);
  }
  // no http2 dissector registered: counted like any other upgrade
  resetHttp1Stats();
  const items = feed(harness(), chunks);
  assert.equal(items.length, 1);
  assert.equal(http1Stats().upgradesOther, 1);
});

test('CONNECT 2xx opens a tunnel: one item, the tunnelled bytes are ignored', async () => {
  const server = http.createServer((_rq, rs) => rs.end());
  server.on('connect', (_rq, socket: net.Socket) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.end(Buffer.from(d).reverse()));
  });
  const rec = await record(server, async (port) => {
    await rawClient(port, ['CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n', Buffer.concat([Buffer.from([0x16, 3, 1, 0, 5]), Buffer.from('GET / HTTP/1.1\r\n\r\n')])], { pauseMs: 50 });
  });
  resetHttp1Stats();
  const items = feed(harness(), rec.connections[0].chunks);
  assert.equal(items.length, 1);
  assert.deepEqual(errors(items), []);
  assert.equal(req(items[0]).method, 'CONNECT');
  assert.equal(req(items[0]).path, 'api.example.com:443');
  assert.equal(req(items[0]).url, 'api.example.com:443');
  assert.equal(res(items[0]).status, 200);
  assert.equal(http1Stats().tunnels, 1);
  assert.ok(http1Stats().bytesIgnored >= 23);
});

test('bodies beyond maxBodyBytes are cut and flagged, sizes stay exact, later calls are intact', async () => {
  const big = Array.from({ length: 30_000 }, (_, i) => `line ${i} ✓\n`).join('');
  const upload = 'u'.repeat(200_000);
  const server = http.createServer((rq, rs) => {
    let n = 0;
    rq.on('data', (d: Buffer) => { n += d.length; });
    rq.on('end', () => {
      if (rq.url === '/big') { rs.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }); rs.end(big); }
      else rs.end(`got ${n}`);
    });
  });
  const rec = await record(server, async (port) => {
    const agent = keepAliveAgent();
    assert.equal((await request(port, { agent, path: '/big' })).body.toString(), big);
    await request(port, { agent, method: 'POST', path: '/upload', headers: { 'Content-Type': 'text/plain', 'Content-Length': upload.length }, body: upload });
    await request(port, { agent, path: '/small' });
    agent.destroy();
  });
  const limit = 16 * 1024 + 1; // odd: the cut lands inside a multi-byte character at some point
  resetHttp1Stats();
  const items = feed(harness({ maxBodyBytes: limit }), rec.connections[0].chunks);
  assert.equal(items.length, 3);
  assert.deepEqual(errors(items), []);
  const c = res(items[0]).content;
  assert.equal(c.truncated, true);
  assert.equal(c.size, Buffer.byteLength(big));
  assert.ok(Buffer.byteLength(c.text) <= limit && Buffer.byteLength(c.text) > limit - 4);
  assert.ok(big.startsWith(c.text), 'a prefix of the body, cut on a character boundary');
  assert.ok(res(items[0]).bodySize > Buffer.byteLength(big), 'chunked framing on the wire');
  const pd = req(items[1]).postData;
  assert.equal(pd.truncated, true);
  assert.equal(pd.text, upload.slice(0, limit));
  assert.equal(req(items[1]).bodySize, upload.length);
  assert.equal(res(items[1]).content.text, `got ${upload.length}`);
  assert.equal(req(items[2]).path, '/small');
  assert.equal(http1Stats().bodiesTruncated, 2);
});

test('binary and non-UTF-8 bodies are kept as base64', async () => {
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff))]);
  const latin = Buffer.from('caf\xe9 cr\xe8me', 'latin1');
  const server = http.createServer((rq, rs) => {
    if (rq.url === '/img') { rs.writeHead(200, { 'Content-Type': 'image/png' }); rs.end(png); }
    else if (rq.url === '/latin') { rs.writeHead(200, { 'Content-Type': 'text/plain; charset=iso-8859-1' }); rs.end(latin); }
    else { rs.writeHead(200, { 'Content-Type': 'image/svg+xml' }); rs.end('<svg/>'); }
  });
  const rec = await record(server, async (port) => {
    const agent = keepAliveAgent();
    for (const path of ['/img', '/latin', '/svg']) await request(port, { agent, path });
    agent.destroy();
  });
  const items = feed(harness(), rec.connections[0].chunks);
  assert.deepEqual(res(items[0]).content, { encoding: 'base64', mimeType: 'image/png', size: png.length, text: png.toString('base64') });
  assert.deepEqual(res(items[1]).content, { encoding: 'base64', mimeType: 'text/plain; charset=iso-8859-1', size: latin.length, text: latin.toString('base64') });
  assert.equal(res(items[2]).content.text, '<svg/>');
});

test('HTTP/1.0: version in the item, close-delimited response finished at onClose', async () => {
  const server = http.createServer((rq, rs) => {
    rs.writeHead(200, { 'Content-Type': 'text/plain' });
    rs.write('part one; ');
    setTimeout(() => rs.end(`part two for ${rq.url}`), 20);
  });
  const rec = await record(server, async (port) => {
    const body = await rawClient(port, ['GET /legacy?x=1 HTTP/1.0\r\nHost: old.example\r\nUser-Agent: ancient/1.0\r\n\r\n']);
    assert.ok(!/content-length|transfer-encoding/i.test(body.toString()), 'server used a close-delimited body');
  });
  const h = harness();
  const items = feed(h, rec.connections[0].chunks, { close: null });
  assert.equal(items.length, 0, 'not done before the connection ends');
  h.parser.onClose(Date.now(), 'fin');
  assert.equal(items.length, 1);
  assert.deepEqual(errors(items), []);
  assert.deepEqual(items[0].protocol, { name: 'http', version: '1.0', abbr: 'HTTP', longName: 'Hypertext Transfer Protocol -- HTTP/1.0', macro: 'http' });
  assert.equal(req(items[0]).httpVersion, 'HTTP/1.0');
  assert.equal(res(items[0]).content.text, 'part one; part two for /legacy?x=1');
  // a capture that ends without seeing the close says so
  const cut = feed(harness(), rec.connections[0].chunks, { close: 'end' });
  assert.match(cut[0].error ?? '', /connection close, which was not seen \(end\)/);
});

test('pipelined requests (one write) are paired with their responses in order', async () => {
  const server = http.createServer((rq, rs) => {
    const parts: Buffer[] = [];
    rq.on('data', (d: Buffer) => parts.push(d));
    rq.on('end', () => { rs.setHeader('Content-Type', 'text/plain'); rs.end(rq.method === 'HEAD' ? undefined : `${rq.method} ${rq.url} ${Buffer.concat(parts)}`); });
  });
  const pipeline =
    'GET /one HTTP/1.1\r\nHost: p\r\n\r\n' +
    'HEAD /two HTTP/1.1\r\nHost: p\r\n\r\n' +
    'POST /three HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhello' +
    'GET /four HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n';
  const rec = await record(server, async (port) => { await rawClient(port, [pipeline]); });
  const chunks = rec.connections[0].chunks;
  assert.equal(chunks.filter((c) => c.dir === 0).length, 1, 'all requests in one segment');
  const items = feed(harness(), chunks);
  assert.deepEqual(errors(items), []);
  assert.deepEqual(items.map((i) => [req(i).method, req(i).path, res(i).content.text]), [
    ['GET', '/one', 'GET /one '], ['HEAD', '/two', ''], ['POST', '/three', 'POST /three hello'], ['GET', '/four', 'GET /four '],
  ]);
  assert.equal(req(items[2]).postData.text, 'hello');
});

test('unanswered requests: timed out by onTick, or flushed by onClose, with an error', async () => {
  const { chunks } = await keepAlive;
  const requestOnly = retime(chunks).filter((c) => c.dir === 0).slice(0, 2);
  const h = harness({ pairTimeoutMs: 1000 });
  feed(h, requestOnly, { close: null });
  const t = requestOnly[1].tsMs;
  h.parser.onTick(t + 500);
  assert.equal(h.items.length, 0);
  h.parser.onTick(t + 1001);
  // the first one is older: both are past the timeout now
  assert.equal(h.items.length, 2);
  for (const it of h.items) {
    assert.equal(it.response, null);
    assert.equal(it.error, 'request timed out without response');
    assert.equal(it.responseSize, 0);
    assert.equal(it.responseTsMs, 0);
  }
  const h2 = harness();
  feed(h2, requestOnly, { close: 'rst' });
  assert.deepEqual(h2.items.map((i) => i.error), ['no response: connection closed (rst)', 'no response: connection closed (rst)']);
});

test('capture started mid-stream: a response without request is an item saying so; the rest pair up', async () => {
  const { chunks } = await keepAlive;
  const timed = retime(chunks);
  // the first request was not captured
  const firstReq = timed.findIndex((c) => c.dir === 0);
  resetHttp1Stats();
  const items = feed(harness(), timed.filter((_, i) => i !== firstReq));
  assert.equal(items.length, 24);
  assert.equal(items[0].request, null);
  assert.match(items[0].error ?? '', /response without request/);
  assert.equal(res(items[0]).status, 200);
  assert.deepEqual(errors(items.slice(1)), []);
  assert.deepEqual(items.slice(1).map((i) => req(i).path), Array.from({ length: 23 }, (_, i) => `/api/v1/items/${i + 1}/detail`));
  assert.equal(http1Stats().orphanResponses, 1);

  // the capture starts in the middle of the first response: its bytes are skipped, its request has no response
  const firstRes = timed.findIndex((c) => c.dir === 1);
  const cutStart = timed.map((c, i) => (i === firstRes ? { ...c, data: c.data.subarray(60) } : c));
  const items2 = feed(harness(), cutStart);
  assert.equal(items2.length, 24);
  assert.equal(items2[0].response, null);
  assert.match(items2[0].error ?? '', /no response/);
  assert.deepEqual(items2.slice(1).map((i) => [req(i).path, res(i).content.text]), items.slice(1).map((i) => [req(i).path, res(i).content.text]));
});

test('capture gaps: the message in flight gets the error, parsing resynchronises, later calls come out', async () => {
  const { chunks } = await keepAlive;
  const timed = coalesce(retime(chunks));
  // runs alternate: request, response, request, ...
  const mk = (at: number, dropFrom: number, dropLen: number): { items: ItemDraft[]; len: number } => {
    const h = harness();
    for (let i = 0; i < timed.length; i++) {
      const c = timed[i];
      if (i === at) {
        h.parser.onData(c.dir, c.data.subarray(0, dropFrom), c.tsMs);
        h.parser.onGap(c.dir, dropLen, c.tsMs);
        h.parser.onData(c.dir, c.data.subarray(dropFrom + dropLen), c.tsMs);
      } else h.parser.onData(c.dir, c.data, c.tsMs);
    }
    h.parser.onClose(1e13, 'fin');
    return { items: h.items, len: dropLen };
  };
  const ref = feed(harness(), timed);
  const bodyStart = (i: number) => timed[i].data.indexOf('\r\n\r\n') + 4;

  // inside a Content-Length response body: the framing is known, nothing else is lost
  resetHttp1Stats();
  const inBody = mk(5, bodyStart(5) + 10, 20);
  assert.equal(inBody.items.length, 24);
  assert.equal(inBody.items[2].error, 'capture gap: 20 bytes lost');
  assert.equal(res(inBody.items[2]).status, res(ref[2]).status);
  assert.equal(res(inBody.items[2]).content.truncated, true);
  assert.equal(res(inBody.items[2]).bodySize, res(ref[2]).bodySize);
  assert.deepEqual(errors(inBody.items).length, 1);
  assert.equal(http1Stats().resyncs, 0);

  // in the middle of a request's headers: the request is salvaged with what was read, then resync
  const afterLine = timed[6].data.indexOf('\n') + 10;
  const inHead = mk(6, afterLine, 25);
  assert.equal(inHead.items.length, 24);
  assert.equal(inHead.items[3].error, 'capture gap: 25 bytes lost');
  assert.equal(req(inHead.items[3]).method, req(ref[3]).method);
  assert.equal(req(inHead.items[3]).url, req(ref[3]).url);
  assert.deepEqual(res(inHead.items[3]), res(ref[3]));
  assert.deepEqual(inHead.items.slice(4), ref.slice(4));

  // in the request line: the method and the start of the target are what is left of the request
  const inLine = mk(6, 20, 25);
  assert.equal(inLine.items.length, 24);
  assert.equal(inLine.items[3].error, 'capture gap: 25 bytes lost; request line cut short');
  assert.equal(req(inLine.items[3]).method, req(ref[3]).method);
  assert.ok(req(ref[3]).url.startsWith(req(inLine.items[3]).url));
  assert.deepEqual(res(inLine.items[3]), res(ref[3]));
  assert.deepEqual(inLine.items.slice(4), ref.slice(4));

  // in the request line before the end of the method: nothing of the request is left; its response comes out alone
  const inMethod = mk(6, 2, 25);
  assert.equal(inMethod.items.length, 24);
  assert.equal(inMethod.items[3].request, null);
  assert.match(inMethod.items[3].error ?? '', /response without request/);
  assert.deepEqual(inMethod.items.slice(4), ref.slice(4));

  // a gap swallowing the end of a response and the next request whole: that request is gone, the rest pairs up
  const wide = (() => {
    const h = harness();
    for (let i = 0; i < timed.length; i++) {
      const c = timed[i];
      if (i === 9) {
        h.parser.onData(c.dir, c.data.subarray(0, 20), c.tsMs);
        h.parser.onGap(c.dir, c.data.length - 20, c.tsMs);
      } else if (i === 10) h.parser.onGap(c.dir, c.data.length, c.tsMs);
      else h.parser.onData(c.dir, c.data, c.tsMs);
    }
    h.parser.onClose(1e13, 'fin');
    return h.items;
  })();
  const last = wide.slice(-18);
  assert.deepEqual(last, ref.slice(-18));
  assert.ok(wide.some((i) => /capture gap/.test(i.error ?? '')));
});

test('one parser per connection: items of concurrent connections do not mix', async () => {
  const server = http.createServer((rq, rs) => setTimeout(() => rs.end(`answer to ${rq.url}`), 5));
  const rec = await record(server, async (port) => {
    const agents = [keepAliveAgent(), keepAliveAgent(), keepAliveAgent()];
    await Promise.all(agents.map(async (agent, a) => {
      for (let i = 0; i < 5; i++) await request(port, { agent, path: `/conn${a}/req${i}` });
    }));
    for (const a of agents) a.destroy();
  });
  assert.equal(rec.connections.length, 3);
  for (const c of rec.connections) {
    const items = feed(harness(), c.chunks);
    assert.equal(items.length, 5);
    const conn = req(items[0]).path.split('/')[1];
    for (const it of items) {
      assert.equal(req(it).path.split('/')[1], conn);
      assert.equal(res(it).content.text, `answer to ${req(it).path}`);
    }
  }
});
