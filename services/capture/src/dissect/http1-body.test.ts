/**
 * Bodies: decoding limits (decompression bombs stay bounded), text/base64
 * choice, cuts on character boundaries; and the request-target helpers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { finishBody, isBinaryMime } from './http1-body.ts';
import { formDecode, parseCookies, parseQuery, parseSetCookies, pathSegments, splitTarget } from './http1-fields.ts';
import { http1Stats, resetHttp1Stats } from './http1.ts';
import { give, harness, res } from './http1-testkit.ts';

/** A gzip bomb: `members` gzip members of 10 MB of zeros each (multi-member gzip decodes to all of them). */
function gzipBomb(members: number): Buffer {
  const one = zlib.gzipSync(Buffer.alloc(10 * 1024 * 1024), { level: 9 });
  return Buffer.concat(Array.from({ length: members }, () => one));
}

test('decompression bomb (1 GB of zeros as gzip) decodes to at most maxBodyBytes, bounded memory', () => {
  const bomb = gzipBomb(100);
  assert.ok(bomb.length < 2 * 1024 * 1024, `bomb is ${bomb.length} bytes`);
  resetHttp1Stats();
  const before = process.memoryUsage().rss;
  const limit = 4 * 1024 * 1024; // the whole compressed body is kept: the decoder is what must stay bounded
  const r = finishBody(bomb, bomb.length, false, 'application/octet-stream', 'gzip', true, limit);
  const grown = process.memoryUsage().rss - before;
  assert.equal(r.truncated, true);
  assert.equal(r.base64, true, 'octet-stream is binary');
  assert.ok(Buffer.from(r.text, 'base64').length <= limit);
  assert.ok(Buffer.from(r.text, 'base64').every((b) => b === 0));
  assert.ok(r.size <= limit * 8 + 1, 'size is what was decoded, not 1 GB');
  assert.ok(grown < 200 * 1024 * 1024, `rss grew ${grown} bytes`);
  assert.equal(http1Stats().decodeCapped, 1);
});

test('large and bomb bodies in every coding through the parser: text cut to the limit, flagged, the next call intact', () => {
  const rows = Buffer.from(Array.from({ length: 120_000 }, (_, i) => `{"row":${i},"v":${(i * 7919) % 10007}}\n`).join(''));
  const bomb = Buffer.alloc(20 * 1024 * 1024, 'a');
  const br = (b: Buffer) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } });
  const cases: [string, Buffer, Buffer][] = [
    ['gzip', rows, zlib.gzipSync(rows)], ['deflate', rows, zlib.deflateSync(rows)], ['br', rows, br(rows)],
    ['gzip', bomb, zlib.gzipSync(bomb)], ['deflate', bomb, zlib.deflateSync(bomb)], ['br', bomb, br(bomb)],
  ];
  const limit = 64 * 1024;
  for (const [enc, plain, body] of cases) {
    const what = `${enc} ${plain === bomb ? 'bomb' : 'rows'} (${body.length} bytes on the wire)`;
    const h = harness({ maxBodyBytes: limit });
    give(h.parser, 0, Buffer.from('GET /big HTTP/1.1\r\nHost: b\r\n\r\nGET /after HTTP/1.1\r\nHost: b\r\n\r\n'), 1);
    give(h.parser, 1, Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: ${enc}\r\nContent-Length: ${body.length}\r\n\r\n`), 2);
    for (let i = 0; i < body.length; i += 1460) give(h.parser, 1, body.subarray(i, i + 1460), 3);
    give(h.parser, 1, Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext'), 4);
    h.parser.onClose(5, 'fin');
    assert.equal(h.items.length, 2, what);
    const c = res(h.items[0]).content;
    assert.equal(c.encoding, enc, what);
    assert.equal(c.truncated, true, what);
    assert.ok(c.text.length <= limit, `${what}: ${c.text.length} chars kept`);
    assert.ok(plain.toString().startsWith(c.text), `${what}: a prefix of the body`);
    // brotli can turn a handful of bytes into megabytes: its bomb may keep nothing, the others keep a useful prefix
    if (!(enc === 'br' && plain === bomb)) assert.ok(c.text.length > limit / 4, `${what}: ${c.text.length} chars kept`);
    assert.equal(res(h.items[0]).bodySize, body.length);
    assert.equal(res(h.items[1]).content.text, 'next');
  }
});

test('Content-Encoding: raw deflate fallback, stacked codings, identity, unknown and corrupt codings', () => {
  const text = 'the quick brown fox '.repeat(50);
  const dec = (enc: string, body: Buffer) => finishBody(body, body.length, false, 'text/plain', enc, true, 1 << 20);
  assert.equal(dec('deflate', zlib.deflateRawSync(text)).text, text);
  assert.equal(dec('gzip, br', zlib.brotliCompressSync(zlib.gzipSync(text))).text, text);
  assert.equal(dec('x-gzip', zlib.gzipSync(text)).text, text);
  assert.equal(dec('identity', Buffer.from(text)).text, text);
  resetHttp1Stats();
  const unknown = dec('compress', Buffer.from('LZW bytes'));
  assert.equal(unknown.base64, true);
  assert.match(unknown.decodeError, /unsupported Content-Encoding: compress/);
  const corrupt = dec('gzip', Buffer.from('definitely not gzip'));
  assert.equal(corrupt.base64, true);
  assert.equal(Buffer.from(corrupt.text, 'base64').toString(), 'definitely not gzip');
  assert.equal(http1Stats().decodeErrors, 2);
  // decoding off: kept as it came
  const off = finishBody(zlib.gzipSync(text), 99, false, 'text/plain', 'gzip', false, 1 << 20);
  assert.equal(off.base64, true);
  assert.equal(off.size, 99);
  // a compressed body cut by the limit still yields the text it holds
  const long = Array.from({ length: 20000 }, (_, i) => `${i},`).join('');
  const gz = zlib.gzipSync(long);
  const cut = finishBody(gz.subarray(0, 4000), gz.length, false, 'text/csv', 'gzip', true, 4000);
  assert.equal(cut.truncated, true);
  assert.ok(cut.text.length > 1000 && long.startsWith(cut.text), 'a prefix of the text');
});

test('text or base64: media type, UTF-8 validity, NUL; cuts never split a character', () => {
  const utf = Buffer.from('ab✓✓✓');
  for (let limit = 1; limit <= utf.length; limit++) {
    const r = finishBody(utf.subarray(0, limit), utf.length, false, 'text/plain', '', false, limit);
    assert.equal(r.base64, false, `limit ${limit}`);
    assert.ok('ab✓✓✓'.startsWith(r.text), `limit ${limit}: ${r.text}`);
    assert.equal(r.truncated, limit < utf.length);
    assert.equal(r.size, utf.length);
  }
  assert.equal(finishBody(Buffer.from('a\0b'), 3, false, 'text/plain', '', false, 100).base64, true);
  assert.equal(finishBody(Buffer.from([0xff, 0xfe]), 2, false, '', '', false, 100).base64, true);
  assert.equal(finishBody(Buffer.from('{"a":1}'), 7, false, 'application/protobuf', '', false, 100).base64, true);
  assert.equal(finishBody(Buffer.from('U+FFFD \uFFFD is fine'), 20, false, '', '', false, 100).text, 'U+FFFD \uFFFD is fine');
  assert.equal(finishBody(Buffer.from('x'), 1, true, 'text/plain', '', false, 100).truncated, true, 'a gap in the body');
  for (const [t, b] of [
    ['image/png', true], ['IMAGE/JPEG; q=1', true], ['image/svg+xml', false], ['application/json', false], ['application/grpc+proto', true],
    ['application/octet-stream', true], ['text/html; charset=utf-8', false], ['audio/ogg', true], ['font/woff2', true],
    ['application/x-www-form-urlencoded', false], ['application/vnd.ms-excel', true], ['', false], ['nonsense', false],
  ] as const) assert.equal(isBinaryMime(t), b, t);
});

test('targets, query strings and cookies', () => {
  assert.deepEqual(splitTarget('/a/b?x=1#frag'), { path: '/a/b', query: 'x=1' });
  assert.deepEqual(splitTarget('/a/b#f?x'), { path: '/a/b', query: '' });
  assert.deepEqual(splitTarget('http://h:8080/p/q?z=2'), { path: '/p/q', query: 'z=2' });
  assert.deepEqual(splitTarget('http://h:8080'), { path: '/', query: '' });
  assert.deepEqual(splitTarget('http://h?x=1'), { path: '/', query: 'x=1' });
  assert.deepEqual(splitTarget('*'), { path: '*', query: '' });
  assert.deepEqual(splitTarget('db:5432'), { path: 'db:5432', query: '' });
  assert.deepEqual(pathSegments('/a//b/'), ['a', 'b']);
  assert.deepEqual(pathSegments('/'), []);
  assert.deepEqual(parseQuery('a=1&a=2&a=3&b&c=&=x&&d=%E2%9C%93&e=%ZZ%20&f=1+2'), { a: ['1', '2', '3'], b: '', c: '', '': 'x', d: '✓', e: '%ZZ ', f: '1 2' });
  const tricky = parseQuery('__proto__=x&constructor=y&constructor=z&toString=t');
  assert.equal(Object.getPrototypeOf(tricky), Object.prototype);
  assert.deepEqual(JSON.parse(JSON.stringify(tricky)), JSON.parse('{"__proto__":"x","constructor":["y","z"],"toString":"t"}'));
  assert.equal(formDecode('%E2%9C'), '\uFFFD', 'a cut escape still decodes what it can');
  assert.deepEqual(parseCookies('a=1; b=x=y; c; d=4;a=9'), { a: '1', b: 'x=y', d: '4' });
  assert.deepEqual(parseSetCookies(['sid=1; Path=/; HttpOnly', 'theme=dark', 'bad', 'sid=2']), { sid: '2', theme: 'dark' });
});

test('headers with hostile names stay plain data', () => {
  const h = harness();
  give(h.parser, 0, Buffer.from('GET / HTTP/1.1\r\n__proto__: {"polluted":1}\r\nconstructor: c\r\nconstructor: d\r\nHost: h\r\nX-Fold: a\r\n  b\r\nno colon line\r\nName : spaced\r\nX-Utf8: caf\xc3\xa9\r\n\r\n', 'latin1'), 1);
  give(h.parser, 1, Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 2);
  assert.equal(h.items.length, 1);
  const headers = (h.items[0].request as { headers: Record<string, string> }).headers;
  assert.equal(Object.getPrototypeOf(headers), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepEqual(JSON.parse(JSON.stringify(headers)), JSON.parse('{"__proto__":"{\\"polluted\\":1}","constructor":"c, d","Host":"h","X-Fold":"a b","Name":"spaced","X-Utf8":"café"}'));
});
