/**
 * probe(): HTTP/1 start lines say yes (prefixes say more), everything else
 * says no quickly: the HTTP/2 preface, RESP, TLS, DNS over TCP, recorded from
 * real clients where one can run here.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import type { ConnectionInfo, Direction } from '../types.ts';
import { http1Dissector } from './http1.ts';
import { CONN, keepAliveAgent, record, request, withTimeout } from './http1-testkit.ts';

const guessed: ConnectionInfo = { ...CONN, handshakeSeen: false };
const probe = (s: string | Buffer, dir: Direction = 0, conn: ConnectionInfo = CONN) => http1Dissector.probe(typeof s === 'string' ? Buffer.from(s, 'latin1') : s, dir, conn);

/** Every proper prefix of a start line is 'more' and the whole line 'yes'. */
function assertPrefixes(line: string, dir: Direction, conn: ConnectionInfo = CONN): void {
  const b = Buffer.from(line, 'latin1');
  let decided = -1;
  for (let i = 1; i <= b.length; i++) {
    const r = http1Dissector.probe(b.subarray(0, i), dir, conn);
    assert.notEqual(r, 'no', `${JSON.stringify(line.slice(0, i))} said no`);
    if (r === 'yes' && decided < 0) decided = i;
  }
  assert.ok(decided > 0, `${JSON.stringify(line)} never said yes`);
}

test('request lines (known methods, WebDAV, PATCH, CONNECT, absolute and * targets) say yes from the client', () => {
  for (const line of [
    'GET / HTTP/1.1\r\n', 'GET /a?b=c HTTP/1.0\r\n', 'POST /api HTTP/1.1\r\n', 'PUT /x HTTP/1.1\r\n', 'DELETE /x HTTP/1.1\r\n',
    'PATCH /x HTTP/1.1\r\n', 'HEAD / HTTP/1.1\r\n', 'OPTIONS * HTTP/1.1\r\n', 'CONNECT db.internal:5432 HTTP/1.1\r\n',
    'TRACE / HTTP/1.1\r\n', 'PROPFIND /dav/ HTTP/1.1\r\n', 'PROPPATCH /dav/f HTTP/1.1\r\n', 'MKCOL /dav/d HTTP/1.1\r\n',
    'COPY /a HTTP/1.1\r\n', 'MOVE /a HTTP/1.1\r\n', 'LOCK /a HTTP/1.1\r\n', 'UNLOCK /a HTTP/1.1\r\n', 'REPORT /cal HTTP/1.1\r\n',
    'MKCALENDAR /cal HTTP/1.1\r\n', 'M-SEARCH * HTTP/1.1\r\n', 'GET http://proxy.example/x?y HTTP/1.1\r\n', 'PURGE /cache HTTP/1.1\n',
  ]) {
    assert.equal(probe(line), 'yes', line);
    assertPrefixes(line, 0);
  }
});

test('status lines say yes from either side (capture started mid-stream); prefixes say more', () => {
  for (const line of ['HTTP/1.1 200 OK\r\n', 'HTTP/1.0 404 Not Found\r\n', 'HTTP/1.1 101 Switching Protocols\r\n', 'HTTP/1.1 204 \r\n']) {
    assert.equal(probe(line, 1), 'yes');
    assert.equal(probe(line, 0), 'yes');
    assertPrefixes(line, 1);
  }
  assert.equal(probe('HTTP/1.1 200'), 'yes', 'enough to decide before the reason phrase');
});

test('a request line from the server side counts only when the roles were guessed', () => {
  assert.equal(probe('GET / HTTP/1.1\r\n', 1, CONN), 'no');
  assert.equal(probe('GET / HTTP/1.1\r\n', 1, guessed), 'yes');
});

test('not HTTP/1: quick no', () => {
  const cases: [string, string | Buffer][] = [
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['HTTP/2 preface, 4 bytes', 'PRI '],
    ['RESP array', '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n'],
    ['RESP inline GET', 'GET key\r\n'],
    ['RESP inline PING', 'PING\r\n'],
    ['TLS record', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])],
    ['DNS over TCP', Buffer.from([0x00, 0x1d, 0x12, 0x34, 0x01, 0x00, 0x00, 0x01])],
    ['HTTP/2 version', 'GET / HTTP/2.0\r\n'],
    ['HTTP/0.9', 'GET /\r\n'],
    ['lower-case method', 'get / HTTP/1.1\r\n'],
    ['unknown method', 'FOO / HTTP/1.1\r\n'],
    ['status 000', 'HTTP/1.1 000 x\r\n'],
    ['status text', 'HTTP/1.1 OK\r\n'],
    ['SSH banner', 'SSH-2.0-OpenSSH_9.6\r\n'],
    ['space in method place', ' GET / HTTP/1.1\r\n'],
    ['control char in target', 'GET /a\x01b HTTP/1.1\r\n'],
    ['empty target', 'GET  HTTP/1.1\r\n'],
  ];
  for (const [what, bytes] of cases) assert.equal(probe(bytes), 'no', what);
  // a few bytes are enough to refuse these
  assert.equal(probe('PRI'), 'no');
  assert.equal(probe('*'), 'no');
  assert.equal(probe(Buffer.from([0x16])), 'no');
  assert.equal(probe(Buffer.from([0x00])), 'no');
  assert.equal(probe('HTTP/2'), 'no');
  // an endless target is not waited for forever
  assert.equal(probe(`GET /${'a'.repeat(9000)}`), 'no');
});

test('real client bytes: node:http request and response say yes; an h2 client preface and a TLS ClientHello say no', async () => {
  const server = http.createServer((_rq, rs) => rs.end('ok'));
  const rec = await record(server, async (port) => {
    const agent = keepAliveAgent();
    await request(port, { agent, method: 'POST', path: '/p', body: 'x' });
    agent.destroy();
  });
  const c = rec.connections[0];
  assert.equal(http1Dissector.probe(c.chunks.find((x) => x.dir === 0)!.data, 0, CONN), 'yes');
  assert.equal(http1Dissector.probe(c.chunks.find((x) => x.dir === 1)!.data, 1, CONN), 'yes');

  // first bytes a real HTTP/2 (prior knowledge) client and a real TLS client send
  const firstBytes = async (connect: (port: number) => { destroy(): void }): Promise<Buffer> => {
    let resolveData: (b: Buffer) => void = () => {};
    const got = new Promise<Buffer>((r) => { resolveData = r; });
    const srv = net.createServer((s) => s.once('data', (d: Buffer) => { resolveData(Buffer.from(d)); s.destroy(); }));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const client = connect((srv.address() as net.AddressInfo).port);
    try {
      return await withTimeout(got, 5000, 'first bytes');
    } finally {
      client.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  };
  const h2 = await firstBytes((port) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => {});
    return s;
  });
  assert.ok(h2.toString('latin1').startsWith('PRI * HTTP/2.0'));
  assert.equal(http1Dissector.probe(h2, 0, CONN), 'no');
  const hello = await firstBytes((port) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    s.on('error', () => {});
    return s;
  });
  assert.equal(hello[0], 0x16);
  assert.equal(http1Dissector.probe(hello, 0, CONN), 'no');
});
