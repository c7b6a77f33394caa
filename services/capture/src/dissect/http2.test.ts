/**
 * HTTP/2 dissector on real traffic: a node:http2 client and server talk
 * through the recording proxy; the recorded bytes go through the parser and
 * the items are compared with what the client and server saw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { http2Dissector, type Http2Parser } from './http2.ts';
import { rng } from '@wirescript/testing';
import { byHeader, harness, readAll, recordHttp2, replay, replayWithGap, request, walkFrames, type ClientResult, type Http2Session } from './http2-testing.ts';

interface ServerSaw {
  method: string;
  path: string;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

const T0 = 1_700_000_000_000;
const ENCODINGS = ['identity', 'gzip', 'br', 'deflate'] as const;
const encode = (enc: string, b: Buffer) => (enc === 'gzip' ? zlib.gzipSync(b) : enc === 'br' ? zlib.brotliCompressSync(b) : enc === 'deflate' ? zlib.deflateSync(b) : b);

/** 80 concurrent API calls of every common shape on one connection. */
async function apiSession(): Promise<{ session: Http2Session; server: Map<string, ServerSaw>; client: Map<string, ClientResult>; sent: Map<string, { method: string; path: string; body?: string }> }> {
  const server = new Map<string, ServerSaw>();
  const client = new Map<string, ClientResult>();
  const sent = new Map<string, { method: string; path: string; body?: string }>();
  const session = await recordHttp2({
    onStream: (stream, headers) => {
      void readAll(stream).then((body) => {
        const id = String(headers['x-id']);
        const i = Number(id);
        server.set(id, { method: String(headers[':method']), path: String(headers[':path']), headers, body });
        if (headers[':method'] === 'HEAD') {
          stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': '42' }, { endStream: true });
          return;
        }
        if (i % 13 === 5) {
          stream.respond({ ':status': 204, 'x-echo': id }, { endStream: true });
          return;
        }
        const enc = ENCODINGS[i % 4];
        const payload = Buffer.from(JSON.stringify({ id: i, method: headers[':method'], path: headers[':path'], got: body.length, pad: 'x'.repeat(i * 7) }));
        const status = i % 7 === 3 ? 404 : headers[':method'] === 'POST' ? 201 : 200;
        const h: http2.OutgoingHttpHeaders = { ':status': status, 'content-type': 'application/json; charset=utf-8', 'x-echo': id, 'set-cookie': [`n${i}=v${i}; Path=/`, `s${i}=t; HttpOnly`] };
        if (enc !== 'identity') h['content-encoding'] = enc;
        if (status === 404 && i % 2 === 0) h.location = `/moved/${i}`;
        const withTrailers = i % 10 === 1;
        stream.respond(h, withTrailers ? { waitForTrailers: true } : {});
        if (withTrailers) stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': `sum-${i}`, 'x-count': '1' }));
        stream.end(encode(enc, payload));
      });
    },
    run: async (c) => {
      const calls: Promise<void>[] = [];
      for (let i = 0; i < 80; i++) {
        const id = String(i);
        const method = i % 19 === 7 ? 'HEAD' : (['GET', 'POST', 'PUT', 'DELETE', 'GET'] as const)[i % 5];
        const path = `/api/v1/items/${i}?page=${i % 3}&tag=a&tag=b${i}&q=caf%C3%A9+au+lait`;
        const body = method === 'POST' ? JSON.stringify({ item: i, name: `n-${i}` }) : method === 'PUT' ? `plain text body ${i} `.repeat(i + 1) : undefined;
        sent.set(id, { method, path, body });
        const headers: http2.OutgoingHttpHeaders = { ':method': method, ':path': path, 'x-id': id, 'user-agent': 'wirescript-test/1.0', cookie: `session=s${i}; theme=dark`, accept: 'application/json' };
        if (body !== undefined) headers['content-type'] = method === 'POST' ? 'application/json' : 'text/plain';
        calls.push(request(c, headers, body).then((r) => void client.set(id, r)));
      }
      await Promise.all(calls);
    },
  });
  return { session, server, client, sent };
}

const api = apiSession();

function items(session: Http2Session, split = 0, opts = {}) {
  const h = harness(http2Dissector, opts);
  replay(h.parser, session.chunks, split);
  h.parser.onClose(session.chunks.at(-1)?.tsMs ?? 0, 'fin');
  return h;
}

test('80 concurrent calls: every item matches what the client and server saw', async () => {
  const { session, server, client, sent } = await api;
  const h = items(session);
  const got = byHeader(h.json(), 'x-id');
  assert.equal(h.items.length, 80);
  assert.equal(got.size, 80);
  for (const [id, it] of got) {
    const s = server.get(id)!;
    const c = client.get(id)!;
    const want = sent.get(id)!;
    assert.equal(it.error, undefined, `item ${id}: ${it.error}`);
    assert.deepEqual(it.protocol, { name: 'http', version: '2.0', abbr: 'HTTP/2', longName: 'Hypertext Transfer Protocol Version 2 (HTTP/2)', macro: 'http2' });
    const rq = it.request;
    assert.equal(rq.method, want.method);
    assert.equal(rq.url, want.path);
    assert.equal(rq.targetUri, `http://${s.headers[':authority']}${want.path}`);
    assert.equal(rq.path, `/api/v1/items/${id}`);
    assert.deepEqual(rq.pathSegments, ['api', 'v1', 'items', id]);
    assert.deepEqual(rq.queryString, { page: String(Number(id) % 3), tag: ['a', `b${id}`], q: 'café au lait' });
    assert.deepEqual(rq.cookies, { session: `s${id}`, theme: 'dark' });
    assert.equal(rq.httpVersion, 'HTTP/2.0');
    // Every header the server received, pseudo-headers included, as sent.
    for (const [k, v] of Object.entries(s.headers)) if (typeof v === 'string') assert.equal(rq.headers[k], v, `request header ${k} of ${id}`);
    assert.equal(rq.headers[':scheme'], 'http');
    assert.equal(rq.bodySize, s.body.length);
    if (want.body !== undefined) {
      assert.equal(rq.postData.text, want.body);
      assert.equal(rq.postData.mimeType, s.headers['content-type']);
    } else {
      assert.equal(rq.postData, undefined);
    }
    assert.ok(rq.headersSize > 0 && rq.headersSize < 200, `request headersSize ${rq.headersSize}`);
    assert.equal(it.requestSize, rq.headersSize + rq.bodySize);
    const rs = it.response;
    assert.equal(rs.status, c.status);
    assert.equal(rs.statusText, '');
    assert.equal(rs.httpVersion, 'HTTP/2.0');
    for (const [k, v] of Object.entries(c.headers)) {
      if (k === 'set-cookie') continue;
      assert.equal(rs.headers[k], String(v), `response header ${k} of ${id}`);
    }
    for (const [k, v] of Object.entries(c.trailers)) assert.equal(rs.trailers[k], String(v), `trailer ${k} of ${id}`);
    if (Number(id) % 10 === 1 && want.method !== 'HEAD' && Number(id) % 13 !== 5) assert.equal(rs.trailers['x-checksum'], `sum-${id}`);
    else assert.equal(rs.trailers, undefined);
    if (c.headers['set-cookie']) assert.deepEqual(rs.cookies, { [`n${id}`]: `v${id}`, [`s${id}`]: 't' });
    assert.equal(rs.redirectURL, c.headers.location ?? '');
    assert.equal(rs.bodySize, c.body.length === 0 ? 0 : rs.bodySize);
    const enc = c.headers['content-encoding'];
    const decoded = enc ? (enc === 'gzip' ? zlib.gunzipSync(c.body) : enc === 'br' ? zlib.brotliDecompressSync(c.body) : zlib.inflateSync(c.body)) : c.body;
    assert.equal(rs.bodySize, c.body.length);
    assert.equal(rs.content.text, decoded.toString('utf8'));
    assert.equal(rs.content.size, decoded.length);
    assert.equal(rs.content.encoding, enc ?? '', 'the Content-Encoding that was undone, as for HTTP/1');
    assert.equal(rs.content.mimeType, c.headers['content-type'] ?? '');
    assert.equal(it.responseSize, rs.headersSize + rs.bodySize);
    assert.ok(it.requestTsMs > 0 && it.responseTsMs >= it.requestTsMs);
  }
});

test('byte-at-a-time and odd-sized pieces give the same items as whole chunks', async () => {
  const { session } = await api;
  const whole = items(session).json();
  assert.deepEqual(items(session, 1).json(), whole);
  assert.deepEqual(items(session, 7).json(), whole);
  assert.deepEqual(items(session, 4099).json(), whole);
});

test('maxBodyBytes cuts kept bodies and flags them; decodeBodies=false keeps the encoded bytes', async () => {
  const { session, client } = await api;
  const small = byHeader(items(session, 0, { maxBodyBytes: 64 }).json(), 'x-id');
  let cut = 0;
  for (const [id, item] of small) {
    const c = client.get(id)!;
    if (c.headers['content-encoding']) {
      // Decoded text is cut at the limit too.
      assert.ok(Buffer.byteLength(item.response.content.text) <= 64);
      const enc = c.headers['content-encoding'];
      const full = enc === 'gzip' ? zlib.gunzipSync(c.body) : enc === 'br' ? zlib.brotliDecompressSync(c.body) : zlib.inflateSync(c.body);
      // Cut when the kept (compressed) prefix or the decoded text was over the limit; the text is a prefix of the real body.
      assert.equal(item.response.content.truncated, c.body.length > 64 || full.length > 64 ? true : undefined);
      assert.ok(full.toString('utf8').startsWith(item.response.content.text));
      continue;
    }
    if (c.body.length <= 64) continue;
    cut++;
    assert.equal(item.response.content.text, c.body.subarray(0, 64).toString('utf8'));
    assert.equal(item.response.content.truncated, true);
    assert.equal(item.response.content.size, c.body.length);
    assert.equal(item.response.bodySize, c.body.length);
  }
  assert.ok(cut >= 10, `identity bodies cut: ${cut}`);
  const raw = byHeader(items(session, 0, { decodeBodies: false }).json(), 'x-id');
  const gz = raw.get('1')!; // 1 % 4 === 1 -> gzip
  assert.equal(gz.response.headers['content-encoding'], 'gzip');
  assert.equal(gz.response.content.encoding, 'base64');
  assert.deepEqual(Buffer.from(gz.response.content.text, 'base64'), client.get('1')!.body);
});

// ---- Edge cases on one connection: small table, huge headers, big bodies, resets, push, interim ----

interface EdgeTruth {
  session: Http2Session;
  big: Buffer;
  upload: Buffer;
  server: Map<string, ServerSaw>;
  client: Map<string, ClientResult>;
}

async function edgeSession(): Promise<EdgeTruth> {
  const big = Buffer.alloc(2_000_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919 + (i >> 8)) & 0xff;
  const upload = Buffer.alloc(1_200_000, 'u');
  const server = new Map<string, ServerSaw>();
  const client = new Map<string, ClientResult>();
  const settings = { headerTableSize: 200, maxHeaderListSize: 1_000_000 };
  const session = await recordHttp2({
    serverOptions: { settings, maxSendHeaderBlockLength: 1_000_000 } as http2.ServerOptions,
    clientOptions: { settings, maxSendHeaderBlockLength: 1_000_000 } as http2.ClientSessionOptions,
    onStream: (stream, headers) => {
      stream.on('error', () => undefined);
      const id = String(headers['x-id']);
      const path = String(headers[':path']);
      if (path === '/hang') {
        stream.on('error', () => undefined);
        return; // never answers: the client cancels
      }
      if (path === '/reset') {
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      void readAll(stream).then((body) => {
        server.set(id, { method: String(headers[':method']), path, headers, body });
        if (path === '/download') {
          stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
          stream.end(big);
        } else if (path === '/upload') {
          stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          stream.end(`got ${body.length}`);
        } else if (path === '/bigheaders') {
          stream.respond({ ':status': 200, 'x-big-response': 'r'.repeat(40_000), 'x-id': id });
          stream.end('ok');
        } else if (path === '/push') {
          stream.pushStream({ ':path': '/pushed.css' }, (err, push) => {
            if (err) return;
            push.respond({ ':status': 200, 'content-type': 'text/css' });
            push.end('body { color: red }');
            stream.respond({ ':status': 200, 'content-type': 'text/html' });
            stream.end('<link rel=stylesheet href=/pushed.css>');
          });
        } else if (path === '/early') {
          stream.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload' });
          stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          stream.end('after hints');
        } else {
          stream.respond({ ':status': 200, 'x-echo': String(headers['x-value']), 'content-type': 'text/plain' });
          stream.end(`echo ${headers['x-value']}`);
        }
      });
    },
    run: async (c) => {
      c.on('stream', (pushed) => {
        pushed.resume();
        pushed.on('error', () => undefined);
      });
      const put = (id: string, headers: http2.OutgoingHttpHeaders, body?: Buffer | string) => request(c, { 'x-id': id, ...headers }, body).then((r) => void client.set(id, r));
      // Distinct values through a 200-byte table: constant insertion and eviction on both sides.
      const calls: Promise<void>[] = [];
      for (let i = 0; i < 30; i++) calls.push(put(`v${i}`, { ':path': `/value/${i}`, 'x-value': `value-${i}-${'z'.repeat(i * 3)}`, 'x-other': `o${i % 4}` }));
      await Promise.all(calls);
      await put('bigheaders', { ':path': '/bigheaders', 'x-big-request': 'q'.repeat(40_000) });
      await Promise.all([put('download', { ':path': '/download' }), put('upload', { ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' }, upload)]);
      await put('push', { ':path': '/push' });
      await put('early', { ':path': '/early' });
      // Client cancel.
      await new Promise<void>((resolve) => {
        const req = c.request({ ':path': '/hang', 'x-id': 'hang' });
        req.on('error', () => undefined);
        req.on('close', () => resolve());
        setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 50);
      });
      // Server reset.
      await new Promise<void>((resolve) => {
        const req = c.request({ ':path': '/reset', 'x-id': 'reset' });
        req.on('error', () => undefined);
        req.on('close', () => resolve());
      });
      await put('after', { ':path': '/value/after', 'x-value': 'after' });
    },
  });
  return { session, big, upload, server, client };
}

const edge = edgeSession();

test('small header table, 40 KB headers (CONTINUATION), 2 MB download, 1.2 MB upload, push, 103, resets', async () => {
  const { session, big, upload, client } = await edge;
  // The recording really has what this test is about.
  const frames0 = walkFrames(session.bytes(0), 0);
  const frames1 = walkFrames(session.bytes(1), 1);
  assert.ok(frames0.some((f) => f.type === 9) && frames1.some((f) => f.type === 9), 'CONTINUATION both ways');
  assert.ok(frames1.some((f) => f.type === 5), 'PUSH_PROMISE');
  assert.ok(frames0.some((f) => f.type === 3) && frames1.some((f) => f.type === 3), 'RST_STREAM both ways');
  assert.ok(frames1.filter((f) => f.type === 0 && f.len > 0).length > 100, 'download split over many DATA frames');

  const h = items(session, 0, { maxBodyBytes: 100_000 });
  const all = h.json();
  const got = byHeader(all, 'x-id');
  for (let i = 0; i < 30; i++) {
    const it = got.get(`v${i}`)!;
    assert.equal(it.error, undefined, it.error);
    assert.equal(it.request.headers['x-value'], `value-${i}-${'z'.repeat(i * 3)}`);
    assert.equal(it.request.headers['x-other'], `o${i % 4}`);
    assert.equal(it.response.headers['x-echo'], client.get(`v${i}`)!.headers['x-echo']);
    assert.equal(it.response.content.text, `echo value-${i}-${'z'.repeat(i * 3)}`);
  }
  const bh = got.get('bigheaders')!;
  assert.equal(bh.error, undefined);
  assert.equal(bh.request.headers['x-big-request'], 'q'.repeat(40_000));
  assert.equal(bh.response.headers['x-big-response'], 'r'.repeat(40_000));
  assert.ok(bh.request.headersSize > 16_384, 'header block spans several frames');

  const dl = got.get('download')!;
  assert.equal(dl.error, undefined);
  assert.equal(dl.response.bodySize, big.length);
  assert.equal(dl.response.content.size, big.length);
  assert.equal(dl.response.content.encoding, 'base64');
  assert.equal(dl.response.content.truncated, true);
  assert.deepEqual(Buffer.from(dl.response.content.text, 'base64'), big.subarray(0, 100_000));

  const up = got.get('upload')!;
  assert.equal(up.error, undefined);
  assert.equal(up.request.bodySize, upload.length);
  assert.equal(up.request.postData.encoding, 'base64');
  assert.equal(up.request.postData.truncated, true);
  assert.deepEqual(Buffer.from(up.request.postData.text, 'base64'), upload.subarray(0, 100_000));
  assert.equal(up.response.content.text, `got ${upload.length}`);

  const pushed = all.find((it) => it.request?.path === '/pushed.css')!;
  assert.ok(pushed, 'an item for the pushed stream');
  assert.equal(pushed.request.method, 'GET');
  assert.equal(pushed.response.status, 200);
  assert.equal(pushed.response.content.text, 'body { color: red }');
  assert.equal(got.get('push')!.response.content.text, '<link rel=stylesheet href=/pushed.css>');

  const early = got.get('early')!;
  assert.equal(early.error, undefined);
  assert.equal(early.response.status, 200, 'the 103 is interim, the item has the final response');
  assert.equal(early.response.content.text, 'after hints');

  const hang = got.get('hang')!;
  assert.equal(hang.error, 'stream reset by client (CANCEL)');
  assert.equal(hang.response, null);
  assert.equal(hang.request.path, '/hang');
  const reset = got.get('reset')!;
  assert.equal(reset.error, 'stream reset by server (INTERNAL_ERROR)');
  assert.equal(got.get('after')!.response.content.text, 'echo after');
  assert.equal(all.length, 30 + 9);
});

test('byte-at-a-time feed of the edge session gives the same items', async () => {
  const { session } = await edge;
  assert.deepEqual(items(session, 1).json(), items(session).json());
});

// ---- Capture loss --------------------------------------------------------

test('a gap inside a DATA payload damages only that stream', async () => {
  const { session } = await edge;
  const bytes1 = session.bytes(1);
  const frames = walkFrames(bytes1, 1);
  // A DATA frame of the 2 MB download, well inside it.
  const dl = frames.filter((f) => f.type === 0 && f.len > 4000);
  const f = dl[Math.floor(dl.length / 2)];
  const h = harness(http2Dissector, { maxBodyBytes: 100_000 });
  replayWithGap(h.parser, session.chunks, 1, f.offset + 9 + 100, 2000);
  h.parser.onClose(0, 'fin');
  const got = byHeader(h.json(), 'x-id');
  const hurt = [...got.values()].filter((it) => it.error !== undefined && !/reset/.test(it.error));
  assert.equal(hurt.length, 1, JSON.stringify(hurt.map((it) => [it.request.path, it.error])));
  assert.equal(hurt[0].request.path, '/download');
  assert.match(hurt[0].error, /capture gap: response body bytes lost/);
  assert.equal(hurt[0].response.bodySize, 2_000_000, 'lost bytes still count on the wire');
  assert.equal(got.get('after')!.error, undefined);
});

test('a gap across response frame headers: in-flight streams get errors, parsing resynchronises, requests stay exact', async () => {
  const { session, server } = await api;
  const bytes1 = session.bytes(1);
  const frames = walkFrames(bytes1, 1);
  const heads = frames.filter((f) => f.type === 1);
  // Lose from the middle of the 20th response HEADERS to the middle of the 30th.
  const from = heads[20].offset + 3;
  const to = heads[30].offset + 5;
  const h = harness(http2Dissector);
  replayWithGap(h.parser, session.chunks, 1, from, to - from);
  h.parser.onClose(session.chunks.at(-1)!.tsMs, 'fin');
  const all = h.json();
  const got = byHeader(all, 'x-id');
  assert.equal(got.size, 80, 'every request still becomes an item');
  for (const [id, it] of got) {
    assert.equal(it.request.method, server.get(id)!.method);
    assert.equal(it.request.url, server.get(id)!.path);
  }
  const lost = all.filter((it) => it.error?.includes('response frames lost'));
  assert.ok(lost.length >= 1, 'in-flight responses are flagged');
  // After the resynchronisation, responses are parsed again: :status is a static-table entry and decodes exactly.
  const { client } = await api;
  const later = heads.slice(33);
  assert.ok(later.length > 20);
  for (const f of later) {
    const id = String((f.sid - 1) / 2); // the client opened stream 2i+1 for call i
    const it = got.get(id)!;
    assert.equal(it.response.status, client.get(id)!.status, `status of ${id}`);
    assert.equal(it.response.bodySize, client.get(id)!.body.length, `body size of ${id}`);
  }
  assert.ok(all.some((it) => /HPACK context lost/.test(it.error ?? '')), 'fields referencing lost table entries are reported');
});

test('a gap at the start of the client direction (mid-connection capture of requests)', async () => {
  const { session } = await api;
  const frames = walkFrames(session.bytes(0), 0);
  const heads = frames.filter((f) => f.type === 1);
  const h = harness(http2Dissector);
  replayWithGap(h.parser, session.chunks, 0, 0, heads[10].offset + 4);
  h.parser.onClose(session.chunks.at(-1)!.tsMs, 'fin');
  const all = h.json();
  assert.equal(all.length, 80);
  const missing = all.filter((it) => it.request === null);
  assert.equal(missing.length, 11, 'ten requests fell in the gap, and the eleventh lost its frame header');
  for (const it of missing) assert.match(it.error, /request not captured/);
  // Requests after the resynchronisation decode wherever they only use entries inserted since.
  assert.ok(all.some((it) => it.request !== null && it.request.method !== ''));
});

test('the parser never holds more than its bounds, and releases everything at close', async () => {
  const { session } = await edge;
  const h = harness(http2Dissector);
  const p = h.parser as Http2Parser;
  let maxRetained = 0;
  for (const c of session.chunks) {
    p.onData(c.dir, c.data, c.tsMs);
    maxRetained = Math.max(maxRetained, p.stats().retainedBytes);
  }
  assert.ok(maxRetained <= 8 * 1024 * 1024);
  p.onClose(0, 'end');
  assert.deepEqual(p.stats(), { openStreams: 0, retainedBytes: 0, frameBufferBytes: 0, emitErrors: 0 });
});

// ---- Fuzz ------------------------------------------------------------------

type Chunk = Http2Session['chunks'][number];

function mutate(base: readonly Chunk[], rnd: () => number): Chunk[] {
  const chunks = base.map((c) => ({ ...c, data: Buffer.from(c.data) }));
  const pick = () => Math.floor(rnd() * chunks.length);
  const n = 1 + Math.floor(rnd() * 5);
  for (let m = 0; m < n && chunks.length > 0; m++) {
    const i = pick();
    const c = chunks[i];
    const at = Math.floor(rnd() * c.data.length);
    switch (Math.floor(rnd() * 7)) {
      case 0: // flip bytes
        for (let k = 0; k < 1 + rnd() * 20; k++) c.data[Math.floor(rnd() * c.data.length)] ^= 1 + Math.floor(rnd() * 255);
        break;
      case 1: { // insert random bytes
        const ins = Buffer.alloc(1 + Math.floor(rnd() * 64));
        for (let k = 0; k < ins.length; k++) ins[k] = Math.floor(rnd() * 256);
        c.data = Buffer.concat([c.data.subarray(0, at), ins, c.data.subarray(at)]);
        break;
      }
      case 2: // delete a slice
        c.data = Buffer.concat([c.data.subarray(0, at), c.data.subarray(at + 1 + Math.floor(rnd() * 200))]);
        break;
      case 3: // duplicate a chunk
        chunks.splice(i, 0, { ...c, data: Buffer.from(c.data) });
        break;
      case 4: // drop a chunk
        chunks.splice(i, 1);
        break;
      case 5: // huge frame lengths where a header might be
        c.data[at] = 0xff;
        break;
      default: // truncate the recording
        chunks.length = i + 1;
    }
  }
  return chunks.filter((c) => c.data.length > 0);
}

test('fuzz: 400 mutated recordings and 50 random streams never break the parser or its bounds', async () => {
  const { session } = await api;
  const { session: edgeRec } = await edge;
  const rnd = rng(20240607);
  const budget = 8 * 1024 * 1024;
  let items = 0;
  for (let iter = 0; iter < 450; iter++) {
    let chunks: Chunk[];
    if (iter < 380) chunks = mutate(session.chunks, rnd);
    else if (iter < 400) chunks = mutate(edgeRec.chunks, rnd);
    else {
      chunks = [];
      for (let k = 0; k < 40; k++) {
        const data = Buffer.alloc(1 + Math.floor(rnd() * 3000));
        for (let j = 0; j < data.length; j++) data[j] = rnd() < 0.5 ? 0 : Math.floor(rnd() * 256);
        chunks.push({ dir: rnd() < 0.5 ? 0 : 1, data: k === 0 ? Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), data]) : data, tsMs: T0 + k });
      }
    }
    const h = harness(http2Dissector, { maxBodyBytes: 4096, pairTimeoutMs: 50 });
    const p = h.parser as Http2Parser;
    for (const c of chunks) {
      if (rnd() < 0.02) p.onGap(c.dir, 1 + Math.floor(rnd() * 5000), c.tsMs);
      const split = rnd() < 0.2 ? 1 + Math.floor(rnd() * 50) : c.data.length;
      for (let o = 0; o < c.data.length; o += split) p.onData(c.dir, c.data.subarray(o, o + split), c.tsMs);
      if (rnd() < 0.05) p.onTick(c.tsMs + rnd() * 100);
      const s = p.stats();
      assert.ok(s.openStreams <= 1000);
      assert.ok(s.retainedBytes <= budget + 64 * 1024, `retained ${s.retainedBytes}`);
      assert.ok(s.frameBufferBytes <= 2 * 1024 * 1024, `frame buffers ${s.frameBufferBytes}`);
    }
    p.onClose(chunks.at(-1)?.tsMs ?? 0, 'end');
    assert.deepEqual(p.stats(), { openStreams: 0, retainedBytes: 0, frameBufferBytes: 0, emitErrors: 0 });
    for (const it of h.items) assert.ok(!it.error?.includes('dissector failure'), `iteration ${iter}: ${it.error}`);
    items += h.items.length;
  }
  assert.ok(items > 10_000, `mutated recordings still yield items (${items})`);
});
