/**
 * gRPC on top of the HTTP/2 dissector, on real traffic: gRPC framing built
 * by hand over node:http2 (to control splits, compression and trailers-only
 * responses), and a real @grpc/grpc-js client and server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { startTcpRecorder } from '@wirescript/testing';
import { http2Dissector } from './http2.ts';
import { decodeGrpcMessage, GrpcFramer, parseGrpcPath } from './grpc.ts';
import { byHeader, harness, readAll, recordHttp2, replay, walkFrames } from './http2-testing.ts';

const GRPC_PROTOCOL = { name: 'http', version: '2.0', abbr: 'gRPC', longName: 'gRPC Remote Procedure Calls', macro: 'grpc' };

function frameMsg(payload: Buffer, compressed = false): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed ? 1 : 0;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

function splitMsgs(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p + 5 <= body.length && out.length < 10_000;) {
    const len = body.readUInt32BE(p + 1);
    out.push(body.subarray(p + 5, p + 5 + len));
    p += 5 + len;
  }
  return out;
}

const big = Buffer.alloc(100_000);
for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;

/** Calls on one connection; every request carries x-id, and the server answers by :path. */
async function handBuilt() {
  const requests = new Map<string, Buffer>();
  const session = await recordHttp2({
    onStream: (stream, headers) => {
      stream.on('error', () => undefined);
      void readAll(stream).then((body) => {
        const id = String(headers['x-id']);
        requests.set(id, body);
        const path = String(headers[':path']);
        const ok = { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'gzip' };
        if (path === '/shop.v1.Catalog/Unimplemented') {
          // Trailers-only: the status rides in the only HEADERS frame.
          stream.respond({ ...ok, 'grpc-status': '12', 'grpc-message': 'method not implemented' }, { endStream: true });
          return;
        }
        stream.respond(path.endsWith('/Compressed') ? { ...ok, 'grpc-encoding': 'gzip' } : ok, { waitForTrailers: true });
        if (path === '/shop.v1.Catalog/GetItem') {
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '' }));
          stream.end(frameMsg(Buffer.from('item-response')));
        } else if (path === '/shop.v1.Catalog/ListItems') {
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          // Two messages in one write, then one that spans many DATA frames.
          stream.write(Buffer.concat([frameMsg(Buffer.from('first')), frameMsg(Buffer.from('second'))]));
          stream.end(frameMsg(big));
        } else if (path === '/shop.v1.Catalog/Missing') {
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '5', 'grpc-message': 'not found: caf%C3%A9 100%25' }));
          stream.end();
        } else if (path === '/shop.v1.Catalog/Compressed') {
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(frameMsg(zlib.gzipSync(Buffer.from('squeezed '.repeat(50))), true));
        } else {
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(frameMsg(Buffer.from(`count=${splitMsgs(body).length}`)));
        }
      });
    },
    run: async (c) => {
      const call = (id: string, method: string, writes: Buffer[], extra: http2.OutgoingHttpHeaders = {}) =>
        new Promise<void>((resolve, reject) => {
          const req = c.request({ ':method': 'POST', ':path': `/shop.v1.Catalog/${method}`, 'content-type': 'application/grpc+proto', te: 'trailers', 'x-id': id, ...extra });
          req.on('error', reject);
          req.resume();
          req.on('end', () => resolve());
          // Separate writes with a pause between them so they go out as separate DATA frames.
          void (async () => {
            for (const w of writes) {
              req.write(w);
              await new Promise((r) => setTimeout(r, 5));
            }
            req.end();
          })();
        });
      const three = Buffer.concat([frameMsg(Buffer.from('alpha')), frameMsg(Buffer.from('beta-beta')), frameMsg(big.subarray(0, 30_000))]);
      await Promise.all([
        call('unary', 'GetItem', [frameMsg(Buffer.from('item-request'))]),
        call('stream', 'ListItems', [frameMsg(Buffer.from('list'))]),
        call('missing', 'Missing', [frameMsg(Buffer.from('nope'))]),
        call('unimpl', 'Unimplemented', [frameMsg(Buffer.alloc(0))]),
        call('compressed', 'Compressed', [frameMsg(zlib.gzipSync(Buffer.from('request squeezed')), true)], { 'grpc-encoding': 'gzip' }),
        // Client streaming, the prefix of the second message in one DATA frame and its payload in the next.
        call('client-stream', 'Upload', [three.subarray(0, 12), three.subarray(12, 17), three.subarray(17)]),
      ]);
    },
  });
  return { session, requests };
}

const hand = handBuilt();

test('gRPC calls over HTTP/2: service, method, message counts and sizes, status from trailers or trailers-only', async () => {
  const { session } = await hand;
  assert.ok(walkFrames(session.bytes(0), 0).filter((f) => f.type === 0 && f.len > 0 && f.len < 10).length >= 2, 'a message split across DATA frames');
  const h = harness(http2Dissector, { maxBodyBytes: 1 << 20 });
  replay(h.parser, session.chunks);
  h.parser.onClose(0, 'fin');
  const got = byHeader(h.json(), 'x-id');
  assert.equal(got.size, 6);
  for (const it of got.values()) {
    assert.deepEqual(it.protocol, GRPC_PROTOCOL);
    assert.equal(it.error, undefined, it.error);
    assert.equal(it.request.grpcService, 'shop.v1.Catalog');
  }
  const unary = got.get('unary')!;
  assert.equal(unary.request.grpcMethod, 'GetItem');
  assert.equal(unary.request.messageCount, 1);
  assert.equal(unary.request.messageBytes, 'item-request'.length);
  assert.equal(Buffer.from(unary.request.postData.text, 'base64').toString(), 'item-request');
  assert.equal(unary.request.postData.mimeType, 'application/grpc+proto');
  assert.equal(unary.request.bodySize, 5 + 'item-request'.length);
  assert.equal(unary.response.grpcStatus, 0);
  assert.equal(unary.response.grpcMessage, '');
  assert.equal(unary.response.messageCount, 1);
  assert.equal(unary.response.content.encoding, 'base64');
  assert.equal(Buffer.from(unary.response.content.text, 'base64').toString(), 'item-response');
  assert.equal(unary.response.status, 200);

  const stream = got.get('stream')!;
  assert.equal(stream.response.messageCount, 3);
  assert.equal(stream.response.messageBytes, 5 + 6 + big.length);
  assert.deepEqual(Buffer.from(stream.response.content.text, 'base64'), Buffer.concat([Buffer.from('firstsecond'), big]));
  assert.equal(stream.response.bodySize, 15 + 5 + 6 + big.length);

  const missing = got.get('missing')!;
  assert.equal(missing.response.grpcStatus, 5);
  assert.equal(missing.response.grpcMessage, 'not found: café 100%');
  assert.equal(missing.response.messageCount, 0);
  assert.equal(missing.response.trailers['grpc-status'], '5', 'trailers are kept apart, as for HTTP/1');

  const unimpl = got.get('unimpl')!;
  assert.equal(unimpl.response.grpcStatus, 12);
  assert.equal(unimpl.response.grpcMessage, 'method not implemented');
  assert.equal(unimpl.request.messageCount, 1);
  assert.equal(unimpl.request.messageBytes, 0);

  const comp = got.get('compressed')!;
  assert.equal(Buffer.from(comp.request.postData.text, 'base64').toString(), 'request squeezed', 'compressed messages are inflated per grpc-encoding');
  assert.equal(Buffer.from(comp.response.content.text, 'base64').toString(), 'squeezed '.repeat(50));
  assert.equal(comp.response.messageBytes, zlib.gzipSync(Buffer.from('squeezed '.repeat(50))).length, 'messageBytes counts wire lengths');

  const up = got.get('client-stream')!;
  assert.equal(up.request.grpcMethod, 'Upload');
  assert.equal(up.request.messageCount, 3);
  assert.equal(up.request.messageBytes, 5 + 9 + 30_000);
  assert.deepEqual(Buffer.from(up.request.postData.text, 'base64'), Buffer.concat([Buffer.from('alphabeta-beta'), big.subarray(0, 30_000)]));
  assert.equal(Buffer.from(up.response.content.text, 'base64').toString(), 'count=3');
});

test('gRPC payloads are cut at maxBodyBytes, counts stay exact', async () => {
  const { session } = await hand;
  const h = harness(http2Dissector, { maxBodyBytes: 1000 });
  replay(h.parser, session.chunks, 333);
  h.parser.onClose(0, 'fin');
  const stream = byHeader(h.json(), 'x-id').get('stream')!;
  assert.equal(stream.response.messageCount, 3);
  assert.equal(stream.response.messageBytes, 5 + 6 + big.length);
  assert.equal(stream.response.content.truncated, true);
  assert.deepEqual(Buffer.from(stream.response.content.text, 'base64'), Buffer.concat([Buffer.from('firstsecond'), big]).subarray(0, 1000));
});

test('a gRPC stream ending inside a message is reported', () => {
  const f = new GrpcFramer(100, '', true);
  const msg = frameMsg(Buffer.from('0123456789'));
  f.feed(msg, 0, 8, 1000);
  assert.equal(f.count, 0);
  assert.equal(f.incomplete(), 'gRPC: stream ended inside a message (3 of 10 bytes)');
  f.feed(msg, 8, msg.length, 1000);
  assert.equal(f.count, 1);
  assert.equal(f.incomplete(), null);
  assert.deepEqual(parseGrpcPath('/a.b.C/D'), { service: 'a.b.C', method: 'D' });
  assert.equal(decodeGrpcMessage('bad %zz %E2%9C%93'), 'bad %zz ✓');
});

// ---- A real gRPC client and server ---------------------------------------

const identity = (b: Buffer) => b;
const method = (path: string, responseStream: boolean) => ({
  path, requestStream: false, responseStream,
  requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
});
const SERVICE = { Echo: method('/test.v1.Echo/Echo', false), Repeat: method('/test.v1.Echo/Repeat', true), Fail: method('/test.v1.Echo/Fail', false) };

test('@grpc/grpc-js client and server: unary, server streaming and an error status', async () => {
  const server = new grpc.Server();
  server.addService(SERVICE as unknown as grpc.ServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.concat([Buffer.from('echo:'), call.request])),
    Repeat: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 0; i < 4; i++) call.write(Buffer.from(`part-${i}-${call.request.toString()}`));
      call.end();
    },
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.PERMISSION_DENIED, details: 'no access for ünïcode user' }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const rec = await startTcpRecorder({ port });
  const Client = grpc.makeGenericClientConstructor(SERVICE as unknown as grpc.ServiceDefinition, 'Echo');
  const client = new Client(`127.0.0.1:${rec.port}`, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => any>;
  let parts: Buffer[] = [];
  try {
    const echoed = await new Promise<Buffer>((resolve, reject) => client.Echo(Buffer.from('hello'), (err: Error | null, res: Buffer) => (err ? reject(err) : resolve(res))));
    assert.equal(echoed.toString(), 'echo:hello');
    parts = await new Promise<Buffer[]>((resolve, reject) => {
      const out: Buffer[] = [];
      const s = client.Repeat(Buffer.from('x'));
      s.on('data', (d: Buffer) => out.push(d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    assert.equal(parts.length, 4);
    const failure = await new Promise<grpc.ServiceError>((resolve) => client.Fail(Buffer.from('?'), (err: grpc.ServiceError) => resolve(err)));
    assert.equal(failure.code, grpc.status.PERMISSION_DENIED);
  } finally {
    (client as unknown as grpc.Client).close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await Promise.race([rec.connections[0]?.closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    await rec.close();
  }
  assert.equal(rec.connections.length, 1);
  const h = harness(http2Dissector);
  replay(h.parser, rec.connections[0].chunks);
  h.parser.onClose(0, 'fin');
  const all = h.json();
  assert.equal(all.length, 3);
  const [echo, repeat, fail] = all;
  for (const it of all) {
    assert.deepEqual(it.protocol, GRPC_PROTOCOL);
    assert.equal(it.error, undefined, it.error);
    assert.equal(it.request.grpcService, 'test.v1.Echo');
    assert.equal(it.request.method, 'POST');
    assert.equal(it.request.headers['content-type'], 'application/grpc');
    assert.equal(it.request.headers.te, 'trailers');
  }
  assert.equal(echo.request.grpcMethod, 'Echo');
  assert.equal(Buffer.from(echo.request.postData.text, 'base64').toString(), 'hello');
  assert.equal(echo.request.messageCount, 1);
  assert.equal(echo.request.messageBytes, 5);
  assert.equal(echo.response.grpcStatus, 0);
  assert.equal(Buffer.from(echo.response.content.text, 'base64').toString(), 'echo:hello');
  assert.equal(repeat.request.grpcMethod, 'Repeat');
  assert.equal(repeat.response.messageCount, 4);
  assert.equal(repeat.response.messageBytes, parts.reduce((a, p) => a + p.length, 0));
  assert.equal(Buffer.from(repeat.response.content.text, 'base64').toString(), parts.map(String).join(''));
  assert.equal(fail.request.grpcMethod, 'Fail');
  assert.equal(fail.response.grpcStatus, grpc.status.PERMISSION_DENIED);
  assert.equal(fail.response.grpcMessage, 'no access for ünïcode user');
  assert.equal(fail.response.messageCount, 0);
});

test('gRPC byte-at-a-time feeding gives the same items', async () => {
  const { session } = await hand;
  const a = harness(http2Dissector);
  replay(a.parser, session.chunks);
  a.parser.onClose(0, 'fin');
  const b = harness(http2Dissector);
  replay(b.parser, session.chunks, 1);
  b.parser.onClose(0, 'fin');
  assert.deepEqual(b.json(), a.json());
});
