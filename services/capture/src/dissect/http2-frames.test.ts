/**
 * HTTP/2 dissector on hand-built frames: what real peers rarely or never
 * send (padding, priority, unknown frames, broken blocks, GOAWAY, h2c
 * hand-over, mid-connection starts) and the resource bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { http2Dissector, MAX_OPEN_STREAMS, type Http2Parser } from './http2.ts';
import { http2Stats, resetHttp2Stats } from './http2-stats.ts';
import { FLAG, FRAME, PREFACE, TEST_CONN, frame, harness, hpackLiterals, hpackPrefixed, hpackString, padded, settings, u32 } from './http2-testing.ts';

const { END_STREAM, END_HEADERS, PADDED, PRIORITY } = FLAG;
const reqBlock = (path: string, extra: [string, string][] = []) => hpackLiterals([[':method', 'GET'], [':scheme', 'http'], [':path', path], [':authority', 'svc:8080'], ...extra]);
const resBlock = (status: string, extra: [string, string][] = []) => hpackLiterals([[':status', status], ...extra]);
const T = 1_700_000_000_000;

function start(h: ReturnType<typeof harness>) {
  h.parser.onData(0, Buffer.concat([PREFACE, settings([[4, 65535]])]), T);
  h.parser.onData(1, Buffer.concat([settings([[3, 100]]), frame(FRAME.SETTINGS, FLAG.ACK, 0)]), T);
}

test('probe: client preface, server SETTINGS, frames mid-connection, and everything else', () => {
  const p = (b: Buffer, dir: 0 | 1) => http2Dissector.probe(b, dir, TEST_CONN);
  assert.equal(p(PREFACE, 0), 'yes');
  assert.equal(p(Buffer.concat([PREFACE, settings()]), 0), 'yes');
  assert.equal(p(PREFACE.subarray(0, 10), 0), 'more');
  assert.equal(p(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 0), 'no');
  assert.equal(p(settings([[3, 100], [4, 65535]]), 1), 'yes');
  assert.equal(p(settings([[3, 100]]).subarray(0, 4), 1), 'more');
  assert.equal(p(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), 1), 'no');
  assert.equal(p(Buffer.alloc(0), 0), 'more');
  // Mid-connection: three consistent frames from the first byte.
  const mid = Buffer.concat([frame(FRAME.HEADERS, END_HEADERS, 3, resBlock('200')), frame(FRAME.DATA, 0, 3, Buffer.from('abc')), frame(FRAME.DATA, END_STREAM, 3, Buffer.from('d'))]);
  assert.equal(p(mid, 1), 'yes');
  assert.equal(p(mid.subarray(0, 20), 1), 'more');
  // Clients do not send on even streams: the same frames from the client side are not HTTP/2.
  const even = Buffer.concat([frame(FRAME.DATA, 0, 2, Buffer.from('a')), frame(FRAME.DATA, 0, 2, Buffer.from('b')), frame(FRAME.DATA, 0, 2, Buffer.from('c'))]);
  assert.equal(p(even, 0), 'no');
  // Random bytes are not frames.
  let seed = 7;
  const rnd = Buffer.alloc(4096);
  for (let i = 0; i < rnd.length; i++) rnd[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  assert.equal(p(rnd, 0), 'no');
  assert.equal(p(rnd, 1), 'no');
});

test('padding, priority, CONTINUATION, unknown frames and control frames between them', () => {
  const h = harness(http2Dissector);
  start(h);
  const block = reqBlock('/padded', [['content-type', 'text/plain']]);
  const head = Buffer.concat([u32(0x80000001), Buffer.from([200])]); // exclusive dependency on stream 1, weight 200
  h.parser.onData(0, Buffer.concat([
    frame(FRAME.HEADERS, PADDED | PRIORITY, 3, padded(Buffer.concat([head, block.subarray(0, 10)]), 7)),
    frame(FRAME.CONTINUATION, 0, 3, block.subarray(10, 20)),
    frame(FRAME.CONTINUATION, END_HEADERS, 3, block.subarray(20)),
    frame(0xfa, 0x3, 3, Buffer.from('unknown extension frame')),
    frame(FRAME.PRIORITY, 0, 3, Buffer.concat([u32(0), Buffer.from([16])])),
    frame(FRAME.DATA, PADDED, 3, padded(Buffer.from('hello '), 20)),
    frame(FRAME.PING, 0, 0, Buffer.alloc(8, 1)),
    frame(FRAME.WINDOW_UPDATE, 0, 0, u32(1 << 20)),
    frame(FRAME.DATA, END_STREAM | PADDED, 3, padded(Buffer.from('world'), 0)),
  ]), T + 1);
  h.parser.onData(1, Buffer.concat([
    frame(FRAME.HEADERS, END_HEADERS | PADDED, 3, padded(resBlock('200', [['content-type', 'text/plain']]), 255)),
    frame(FRAME.DATA, PADDED, 3, padded(Buffer.from('ok'), 3)),
    frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 3, hpackLiterals([['x-trailer', 't']])),
  ]), T + 5);
  const [it] = h.json();
  assert.equal(h.items.length, 1);
  assert.equal(it.error, undefined);
  assert.equal(it.request.path, '/padded');
  assert.equal(it.request.postData.text, 'hello world');
  assert.equal(it.request.bodySize, 11, 'padding is not body');
  assert.equal(it.request.headersSize, block.length, 'headersSize counts the header block, not padding or priority');
  assert.equal(it.response.content.text, 'ok');
  assert.equal(it.response.trailers['x-trailer'], 't');
  assert.equal(it.response.headers['x-trailer'], undefined);
  assert.equal(it.requestTsMs, T + 1);
  assert.equal(it.responseTsMs, T + 5);
});

test('h2c upgrade hand-over: the response on stream 1 becomes an item without request and without error', () => {
  const h = harness(http2Dissector);
  // What the HTTP/1 parser passes on after the 101: the client preface, the server's SETTINGS and stream 1's response.
  start(h);
  h.parser.onData(1, Buffer.concat([frame(FRAME.HEADERS, END_HEADERS, 1, resBlock('200', [['content-type', 'text/html']])), frame(FRAME.DATA, END_STREAM, 1, Buffer.from('<p>upgraded</p>'))]), T + 2);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 3, reqBlock('/next')), T + 3);
  h.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 3, resBlock('204')), T + 4);
  const [up, next] = h.json();
  assert.equal(up.request, null);
  assert.equal(up.error, undefined);
  assert.equal(up.response.content.text, '<p>upgraded</p>');
  assert.equal(up.requestTsMs, 0);
  assert.equal(next.request.path, '/next');
  assert.equal(next.response.status, 204);
});

test('mid-connection start: a response whose request was not captured has an error; frames of finished streams open nothing', () => {
  const h = harness(http2Dissector);
  h.parser.onData(1, Buffer.concat([frame(FRAME.HEADERS, END_HEADERS, 41, resBlock('200')), frame(FRAME.DATA, END_STREAM, 41, Buffer.from('x'))]), T);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 43, reqBlock('/a')), T + 1);
  h.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 43, resBlock('200')), T + 2);
  // Late trailers on the finished streams.
  h.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 43, hpackLiterals([['x', 'y']])), T + 3);
  h.parser.onData(1, frame(FRAME.RST_STREAM, 0, 41, u32(8)), T + 3);
  h.parser.onClose(T + 4, 'end');
  const all = h.json();
  assert.equal(all.length, 2);
  assert.equal(all[0].request, null);
  assert.match(all[0].error, /request not captured/);
  assert.equal(all[1].error, undefined);
});

test('GOAWAY: streams above the last processed id are items with an error', () => {
  const h = harness(http2Dissector);
  start(h);
  for (const sid of [1, 3, 5]) h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, sid, reqBlock(`/s${sid}`)), T + sid);
  h.parser.onData(1, frame(FRAME.GOAWAY, 0, 0, Buffer.concat([u32(1, 0), Buffer.from('bye')])), T + 10);
  assert.equal(h.items.length, 2);
  for (const it of h.json()) assert.equal(it.error, 'not processed: server sent GOAWAY (NO_ERROR, last stream 1)');
  h.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, resBlock('200')), T + 11);
  assert.equal(h.items.length, 3);
  assert.equal(h.json()[2].error, undefined);
});

test('pair timeout and close flush what is open, with errors', () => {
  const h = harness(http2Dissector, { pairTimeoutMs: 1000 });
  start(h);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, reqBlock('/slow')), T);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 3, reqBlock('/half')), T + 500);
  h.parser.onData(1, Buffer.concat([frame(FRAME.HEADERS, END_HEADERS, 3, resBlock('200')), frame(FRAME.DATA, 0, 3, Buffer.from('part'))]), T + 600);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 5, reqBlock('/open')), T + 700);
  h.parser.onTick(T + 999);
  assert.equal(h.items.length, 0);
  h.parser.onTick(T + 1000);
  assert.equal(h.items.length, 1);
  assert.equal(h.json()[0].error, 'request timed out without response');
  h.parser.onClose(T + 1100, 'fin');
  const [, half, open] = h.json();
  assert.equal(half.error, 'response incomplete: connection closed (fin)');
  assert.equal(half.response.content.text, 'part');
  assert.equal(open.error, 'connection closed (fin) before the response');
  // Nothing after close.
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 7, reqBlock('/late')), T + 2000);
  h.parser.onClose(T + 2001, 'end');
  assert.equal(h.items.length, 3);
});

test('a header block interrupted by another frame loses the block and the HPACK context; literal-only blocks still decode', () => {
  const h = harness(http2Dissector);
  start(h);
  // An indexed insertion first, so that the table has something to lose.
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.concat([Buffer.from([0x82, 0x86, 0x84, 0x41]), hpackString('svc'), Buffer.from([0x40]), hpackString('x-tenant'), hpackString('acme')])), T);
  h.parser.onData(0, Buffer.concat([frame(FRAME.HEADERS, 0, 3, reqBlock('/cut').subarray(0, 5)), frame(FRAME.DATA, 0, 3, Buffer.from('x'))]), T + 1);
  // Stream 5 refers to x-tenant (dynamic index 62): unknown now. Stream 7 is literal-only: exact.
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 5, Buffer.concat([reqBlock('/five'), Buffer.from([0x80 | 62])])), T + 2);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 7, reqBlock('/seven')), T + 3);
  for (const sid of [1, 3, 5, 7]) h.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, sid, resBlock('200')), T + 4);
  const [one, three, five, seven] = h.json();
  assert.equal(one.error, undefined);
  assert.equal(one.request.headers['x-tenant'], 'acme');
  assert.match(three.error, /header block lost \(header block interrupted by another frame\)/);
  assert.equal(three.request.method, '');
  assert.match(five.error, /HPACK context lost .*1 header field\(s\) could not be decoded/);
  assert.equal(five.request.path, '/five');
  assert.equal(five.request.headers['x-tenant'], undefined);
  assert.equal(seven.error, undefined);
  assert.equal(seven.request.path, '/seven');
});

test('HPACK errors: a corrupt block is an item error, and SETTINGS_HEADER_TABLE_SIZE governs size updates', () => {
  const h = harness(http2Dissector);
  start(h);
  // Size update to 8192 is over the server's (default 4096) setting.
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.concat([hpackPrefixed(8192, 5, 0x20), reqBlock('/big-table')])), T);
  h.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, resBlock('200')), T + 1);
  assert.match(h.json()[0].error, /HPACK decoding failed: dynamic table size update to 8192 over the limit 4096/);

  const h2 = harness(http2Dissector);
  start(h2);
  h2.parser.onData(1, settings([[1, 8192]]), T);
  h2.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.concat([hpackPrefixed(8192, 5, 0x20), reqBlock('/big-table')])), T + 1);
  h2.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, resBlock('200')), T + 2);
  assert.equal(h2.json()[0].error, undefined);
  assert.equal(h2.json()[0].request.path, '/big-table');
});

test('padding longer than its frame, a PING of the wrong size and garbage: errors and resynchronisation, never a throw', () => {
  const h = harness(http2Dissector);
  start(h);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS, 1, reqBlock('/p')), T);
  h.parser.onData(0, frame(FRAME.DATA, PADDED | END_STREAM, 1, Buffer.from([50, 1, 2])), T + 1);
  h.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, resBlock('200')), T + 2);
  assert.match(h.json()[0].error, /malformed DATA frame/);
  // A PING of 7 bytes is a connection error: boundaries are considered lost, then found again.
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS, 3, reqBlock('/q')), T + 3);
  h.parser.onData(0, Buffer.concat([frame(FRAME.PING, 0, 0, Buffer.alloc(7)), Buffer.from('garbage garbage garbage')]), T + 4);
  h.parser.onData(0, Buffer.concat([frame(FRAME.WINDOW_UPDATE, 0, 0, u32(100)), frame(FRAME.PING, 0, 0, Buffer.alloc(8)), frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 5, reqBlock('/r'))]), T + 5);
  h.parser.onData(1, Buffer.concat([frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 3, resBlock('200')), frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 5, resBlock('201'))]), T + 6);
  const [, q, r] = h.json();
  assert.match(q.error, /request frames lost: invalid frame header \(type 6, length 7/);
  assert.equal(r.request.path, '/r', 'parsing resumed on the frames after the garbage');
  assert.equal(r.response.status, 201);
  assert.equal(r.error, undefined);
});

test('bounds: open streams, header block size, and a sink that throws', () => {
  const h = harness(http2Dissector);
  start(h);
  const p = h.parser as Http2Parser;
  for (let i = 0; i < MAX_OPEN_STREAMS + 500; i++) h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS, 2 * i + 1, reqBlock(`/s${i}`)), T + i);
  assert.equal(p.stats().openStreams, MAX_OPEN_STREAMS);
  assert.equal(h.items.length, 500);
  assert.match(h.json()[0].error, /evicted: more than 1000 open streams/);
  assert.equal(h.json()[0].request.path, '/s0');

  // A header block that never ends: gathered up to the cap, then dropped.
  const h2 = harness(http2Dissector);
  start(h2);
  const p2 = h2.parser as Http2Parser;
  h2.parser.onData(0, frame(FRAME.HEADERS, 0, 1, Buffer.alloc(16_000, 0x41)), T);
  for (let i = 0; i < 40; i++) {
    h2.parser.onData(0, frame(FRAME.CONTINUATION, 0, 1, Buffer.alloc(16_000, 0x41)), T);
    assert.ok(p2.stats().frameBufferBytes <= 256 * 1024 + 16_000);
  }
  h2.parser.onData(0, frame(FRAME.CONTINUATION, END_HEADERS | END_STREAM, 1, Buffer.alloc(10, 0x41)), T);
  h2.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, resBlock('431')), T + 1);
  assert.match(h2.json()[0].error, /header block lost \(header block over 262144 bytes\)/);
  assert.equal(h2.json()[0].request.headersSize, 16_000 * 41 + 10);

  // The sink is someone else's code: its exceptions are counted, not propagated.
  let calls = 0;
  const parser = http2Dissector.create({
    conn: TEST_CONN, opts: { maxBodyBytes: 1024, pairTimeoutMs: 1000, decodeBodies: true }, switchTo: () => null,
    sink: { emit: () => { calls++; throw new Error('sink down'); } },
  }) as Http2Parser;
  parser.onData(0, Buffer.concat([PREFACE, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, reqBlock('/x'))]), T);
  parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, resBlock('200')), T);
  assert.equal(calls, 1);
  assert.equal(parser.stats().emitErrors, 1);
});

test('PUSH_PROMISE: the promised request pairs with the response on the even stream; a refused push is an error', () => {
  const h = harness(http2Dissector);
  start(h);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, reqBlock('/page')), T);
  h.parser.onData(1, Buffer.concat([
    frame(FRAME.PUSH_PROMISE, END_HEADERS | PADDED, 1, padded(Buffer.concat([u32(2), reqBlock('/app.js')]), 4)),
    frame(FRAME.PUSH_PROMISE, END_HEADERS, 1, Buffer.concat([u32(4), reqBlock('/refused.js')])),
    frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, resBlock('200')),
    frame(FRAME.HEADERS, END_HEADERS, 2, resBlock('200', [['content-type', 'text/javascript']])),
    frame(FRAME.DATA, END_STREAM, 2, Buffer.from('run()')),
  ]), T + 1);
  h.parser.onData(0, frame(FRAME.RST_STREAM, 0, 4, u32(8)), T + 2);
  const [page, js, refused] = h.json();
  assert.equal(page.request.path, '/page');
  assert.equal(js.request.path, '/app.js');
  assert.equal(js.response.content.text, 'run()');
  assert.equal(js.error, undefined);
  assert.equal(refused.request.path, '/refused.js');
  assert.equal(refused.error, 'stream reset by client (CANCEL)');
});

test('process-wide counters make drops, losses and cuts visible', () => {
  resetHttp2Stats();
  const h = harness(http2Dissector, { maxBodyBytes: 4 });
  start(h);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.concat([Buffer.from([0x40]), hpackString('x-k'), hpackString('v'), reqBlock('/a')])), T);
  h.parser.onData(1, Buffer.concat([frame(FRAME.HEADERS, END_HEADERS, 1, resBlock('200')), frame(FRAME.DATA, END_STREAM, 1, Buffer.from('longer than four'))]), T + 1);
  h.parser.onData(0, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 3, reqBlock('/b')), T + 2);
  h.parser.onData(0, frame(FRAME.RST_STREAM, 0, 3, u32(8)), T + 3);
  h.parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 9, resBlock('200')), T + 4); // no request
  h.parser.onGap(0, 3, T + 5); // at a frame boundary: resync, context lost
  h.parser.onData(0, Buffer.concat([Buffer.from('junk'), frame(FRAME.PING, 0, 0, Buffer.alloc(8)), frame(FRAME.PING, 0, 0, Buffer.alloc(8)),
    frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 11, Buffer.concat([reqBlock('/c'), Buffer.from([0x80 | 62])]))]), T + 6);
  h.parser.onClose(T + 7, 'fin');
  const s = http2Stats();
  assert.equal(s.items, 4);
  assert.equal(s.itemsWithError, 3);
  assert.equal(s.streamsReset, 1);
  assert.equal(s.orphanResponses, 1);
  assert.equal(s.unanswered, 1);
  assert.equal(s.gaps, 1);
  assert.equal(s.gapBytes, 3);
  assert.equal(s.resyncs, 1);
  assert.equal(s.bytesSkipped, 4);
  assert.equal(s.headerFieldsUnknown, 1);
  assert.equal(s.bodiesTruncated, 1);
  assert.equal(s.internalErrors, 0);
});

test('an internal error never escapes: open calls are flushed with the error and the connection is ignored after', () => {
  resetHttp2Stats();
  const items: unknown[] = [];
  let reads = 0;
  const opts = { pairTimeoutMs: 1000, decodeBodies: true, get maxBodyBytes(): number {
    if (++reads > 1) throw new Error('planted'); // the constructor reads it once; DATA handling next
    return 1024;
  } };
  const parser = http2Dissector.create({ conn: TEST_CONN, opts, switchTo: () => null, sink: { emit: (_c, it) => void items.push(it) } }) as Http2Parser;
  parser.onData(0, Buffer.concat([PREFACE, frame(FRAME.HEADERS, END_HEADERS, 1, reqBlock('/x'))]), T);
  assert.doesNotThrow(() => parser.onData(0, frame(FRAME.DATA, END_STREAM, 1, Buffer.from('body')), T + 1));
  assert.equal(items.length, 1);
  assert.match((items[0] as { error: string }).error, /http2 dissector failure: planted/);
  assert.equal(http2Stats().internalErrors, 1);
  assert.doesNotThrow(() => {
    parser.onData(1, frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, resBlock('200')), T + 2);
    parser.onGap(1, 10, T + 3);
    parser.onTick(T + 5000);
    parser.onClose(T + 6000, 'fin');
  });
  assert.equal(items.length, 1);
  assert.deepEqual(parser.stats(), { openStreams: 0, retainedBytes: 0, frameBufferBytes: 0, emitErrors: 0 });
});
