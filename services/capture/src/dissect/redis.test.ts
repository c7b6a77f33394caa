/**
 * Redis dissector tests on real traffic: a raw RESP client talks to the real
 * Redis on 127.0.0.1:6379 through the recording proxy; the recorded chunks
 * are replayed into the parser (whole, and byte at a time) and the items are
 * compared with what the commands must return. Then gaps, timeouts and
 * adversarial bytes on crafted and mutated streams.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTcpRecorder, rng, type RecordedChunk, type TcpRecorder } from '@wirescript/testing';
import type { ItemDraft } from '../types.ts';
import { MAX_PENDING, probeRedisCommand, probeRedisReply, redisDissector } from './redis.ts';
import { MAX_NODES } from './redis-resp.ts';
import {
  encodeCommand, encodeCommands, newRedisParser, RawRedisClient, randomPrefix, REDIS_PORT, replay, summarize, tcpConn,
} from './redis-testkit.ts';

type Cmd = Array<string | Buffer>;

/** Items without the ECHO/PING marker items the client adds to know a batch is answered (checked on the way). */
function withoutMarkers(items: ItemDraft[]): ItemDraft[] {
  return items.filter((i) => {
    const r = i.request as { command?: string; key?: string } | null;
    const marker = r && (r.command === 'ECHO' || r.command === 'PING') && typeof r.key === 'string' && r.key.startsWith('mk-');
    if (marker) {
      const v = (i.response as { value: unknown }).value;
      assert.ok(v === r.key || (Array.isArray(v) && v[1] === r.key), `marker ${r.key} paired with ${JSON.stringify(v)}`);
    }
    return !marker;
  });
}

function req(command: string, key = '', value = ''): Record<string, unknown> {
  return { command, key, value };
}

function parse(chunks: RecordedChunk[], opts: { split?: number; maxBodyBytes?: number } = {}): ItemDraft[] {
  const { items, parser } = newRedisParser({ maxBodyBytes: opts.maxBodyBytes ?? 64 * 1024 });
  replay(parser, chunks, opts.split);
  parser.onClose(Date.now(), 'fin');
  assert.equal(parser.stats.protocolErrors, 0, 'no protocol errors on real traffic');
  assert.equal(parser.stats.internalErrors, 0);
  return items;
}

/** Every byte of both directions is accounted for in the items' sizes. */
function assertSizesCover(items: ItemDraft[], rec: TcpRecorder, conn: number): void {
  const reqBytes = items.reduce((a, i) => a + i.requestSize, 0);
  const resBytes = items.reduce((a, i) => a + i.responseSize, 0);
  assert.equal(reqBytes, rec.bytes(conn, 0).length, 'request sizes add up to the client bytes');
  assert.equal(resBytes, rec.bytes(conn, 1).length, 'response sizes add up to the server bytes');
}

let rec: TcpRecorder;
const prefix = randomPrefix();
const cleanup: RawRedisClient[] = [];

async function client(): Promise<RawRedisClient> {
  const c = await RawRedisClient.connect(rec.port);
  cleanup.push(c);
  return c;
}

/** A direct (unrecorded) connection, for publishing and cleanup. */
async function direct(): Promise<RawRedisClient> {
  const c = await RawRedisClient.connect(REDIS_PORT);
  cleanup.push(c);
  return c;
}

before(async () => {
  rec = await startTcpRecorder({ port: REDIS_PORT });
});

after(async () => {
  // Delete every key this run named (never FLUSHALL: the server is shared).
  const c = await RawRedisClient.connect(REDIS_PORT);
  await c.run([['DEL', ...usedKeys]]);
  await c.close();
  for (const x of cleanup) await x.close();
  await rec.close();
});

const usedKeys = new Set<string>();
const k = (s: string): string => {
  usedKeys.add(prefix + s);
  return prefix + s;
};

function basicCommands(): Array<{ cmd: Cmd; request: Record<string, unknown>; response: Record<string, unknown> }> {
  return [
    { cmd: ['SET', k('s'), 'hello'], request: req('SET', k('s'), 'hello'), response: { type: 'simple string', value: 'OK' } },
    { cmd: ['GET', k('s')], request: req('GET', k('s')), response: { type: 'bulk string', value: 'hello' } },
    { cmd: ['INCR', k('n')], request: req('INCR', k('n')), response: { type: 'integer', value: 1 } },
    { cmd: ['incr', k('n')], request: req('INCR', k('n')), response: { type: 'integer', value: 2 } },
    { cmd: ['MGET', k('s'), k('n'), k('missing')], request: req('MGET', k('s'), `${k('n')} ${k('missing')}`), response: { type: 'array', value: ['hello', '2', null] } },
    { cmd: ['HSET', k('h'), 'f1', 'v1', 'f2', 'v 2'], request: req('HSET', k('h'), 'f1 v1 f2 v 2'), response: { type: 'integer', value: 2 } },
    { cmd: ['HGETALL', k('h')], request: req('HGETALL', k('h')), response: { type: 'array', value: ['f1', 'v1', 'f2', 'v 2'] } },
    { cmd: ['LPUSH', k('l'), 'a', 'b', 'c'], request: req('LPUSH', k('l'), 'a b c'), response: { type: 'integer', value: 3 } },
    { cmd: ['LRANGE', k('l'), '0', '-1'], request: req('LRANGE', k('l'), '0 -1'), response: { type: 'array', value: ['c', 'b', 'a'] } },
    { cmd: ['EXPIRE', k('s'), '1000'], request: req('EXPIRE', k('s'), '1000'), response: { type: 'integer', value: 1 } },
    { cmd: ['PERSIST', k('s')], request: req('PERSIST', k('s')), response: { type: 'integer', value: 1 } },
    { cmd: ['TTL', k('s')], request: req('TTL', k('s')), response: { type: 'integer', value: -1 } },
    { cmd: ['GET', k('missing')], request: req('GET', k('missing')), response: { type: 'null', value: null } },
    { cmd: ['PING'], request: req('PING'), response: { type: 'simple string', value: 'PONG' } },
    { cmd: ['INCR', k('s')], request: req('INCR', k('s')), response: { type: 'error', value: 'ERR value is not an integer or out of range' } },
    { cmd: ['CLIENT', 'SETNAME', 'ws-test'], request: req('CLIENT', 'SETNAME', 'ws-test'), response: { type: 'simple string', value: 'OK' } },
    { cmd: ['DEL', k('s'), k('n'), k('h'), k('l')], request: req('DEL', k('s'), `${k('n')} ${k('h')} ${k('l')}`), response: { type: 'integer', value: 4 } },
  ];
}

describe('redis: real traffic through the recording proxy', () => {
  test('commands one at a time: each item pairs the command with its reply', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    const expected = basicCommands();
    for (const e of expected) await c.run([e.cmd]);
    await c.close();
    await rec.connections[connIndex].closed;
    const chunks = rec.connections[connIndex].chunks;
    const items = parse(chunks);
    assertSizesCover(items, rec, connIndex);
    const got = withoutMarkers(items);
    assert.equal(got.length, expected.length);
    for (let i = 0; i < expected.length; i++) {
      assert.deepEqual(got[i].request, expected[i].request, `request ${i}`);
      assert.deepEqual(got[i].response, expected[i].response, `response ${i} (${expected[i].cmd[0]})`);
      assert.equal(got[i].requestSize, encodeCommand(expected[i].cmd).length);
      assert.equal(got[i].error, undefined);
      assert.ok(got[i].responseTsMs >= got[i].requestTsMs && got[i].requestTsMs > 0);
      assert.deepEqual(got[i].protocol, { name: 'redis', version: '3.x', abbr: 'REDIS', longName: 'Redis Serialization Protocol', macro: 'redis' });
    }
    // Byte at a time and in odd splits: the same items.
    for (const split of [1, 3, 7]) assert.deepEqual(summarize(parse(chunks, { split })), summarize(items), `split ${split}`);
  });

  test('pipelined batch in one write: FIFO pairing, sizes exact', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    const expected = basicCommands();
    await c.run(expected.map((e) => e.cmd));
    await c.run(expected.map((e) => e.cmd));
    await c.close();
    await rec.connections[connIndex].closed;
    const chunks = rec.connections[connIndex].chunks;
    const items = parse(chunks);
    assertSizesCover(items, rec, connIndex);
    const got = withoutMarkers(items);
    assert.equal(got.length, expected.length * 2);
    for (let i = 0; i < got.length; i++) {
      const e = expected[i % expected.length];
      assert.deepEqual(got[i].request, e.request, `request ${i}`);
      // The second round runs on a fresh state too (the batch ends with DEL).
      assert.deepEqual(got[i].response, e.response, `response ${i}`);
    }
    assert.deepEqual(summarize(parse(chunks, { split: 1 })), summarize(items));
  });

  test('a value beyond maxBodyBytes is cut (not buffered) and flagged; sizes stay exact', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    const big = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(10_000); // 360 000 bytes
    const utf = 'é'.repeat(5000); // 2-byte characters: the cut must not split one
    await c.run([['SET', k('big'), big], ['GET', k('big')], ['STRLEN', k('big')], ['SET', k('utf'), utf], ['GET', k('utf')], ['DEL', k('big'), k('utf')]]);
    await c.close();
    await rec.connections[connIndex].closed;
    const max = 1001;
    const items = withoutMarkers(parse(rec.connections[connIndex].chunks, { maxBodyBytes: max }));
    const [set, get, strlen, setU, getU] = items;
    const keyLen = Buffer.byteLength(k('big'));
    assert.equal(set.request?.value, big.slice(0, max - 3 - keyLen));
    assert.equal(set.request?.truncated, true);
    assert.equal(set.requestSize, encodeCommand(['SET', k('big'), big]).length);
    assert.deepEqual(set.response, { type: 'simple string', value: 'OK' });
    assert.deepEqual(get.response, { type: 'bulk string', value: big.slice(0, max), truncated: true });
    assert.equal(get.responseSize, `$${big.length}\r\n`.length + big.length + 2);
    assert.deepEqual(strlen.response, { type: 'integer', value: big.length });
    // 1001 bytes of 2-byte characters: 500 whole characters, no replacement character, not base64.
    assert.deepEqual(getU.response, { type: 'bulk string', value: 'é'.repeat(500), truncated: true });
    assert.equal(setU.request?.encoding, undefined);
    assert.equal(get.error, undefined);
  });

  test('binary keys and values are base64 with encoding: base64', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    const bin = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]);
    await c.run([['SET', k('bin'), bin], ['GET', k('bin')], ['DEL', k('bin')]]);
    await c.close();
    await rec.connections[connIndex].closed;
    const [set, get] = withoutMarkers(parse(rec.connections[connIndex].chunks));
    assert.deepEqual(set.request, { command: 'SET', key: Buffer.from(k('bin')).toString('base64'), value: bin.toString('base64'), encoding: 'base64' });
    assert.deepEqual(get.response, { type: 'bulk string', value: bin.toString('base64'), encoding: 'base64' });
    assert.deepEqual(get.request, req('GET', k('bin')), 'a text-only request stays text');
  });

  test('RESP3 after HELLO 3: map, double, null, set, boolean, big number, verbatim, error', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    await c.run([
      ['HELLO', '3'],
      ['HSET', k('h3'), 'f1', 'v1', 'f2', 'v2'],
      ['HGETALL', k('h3')],
      ['ZADD', k('z3'), '1.5', 'm'],
      ['ZSCORE', k('z3'), 'm'],
      ['GET', k('none')],
      ['SADD', k('s3'), 'only'],
      ['SMEMBERS', k('s3')],
      ['EVAL', 'redis.setresp(3); return true', '0'],
      ['EVAL', "redis.setresp(3); return {big_number='123456789012345678901234567890'}", '0'],
      ['EVAL', "redis.setresp(3); return {double=-2.25}", '0'],
      ['EVAL', "return {err='bad thing'}", '0'],
      ['EVAL', "redis.setresp(3); return {1, {map={a=1}}, {double=0.5}}", '0'],
      ['CLIENT', 'INFO'],
      ['DEL', k('h3'), k('z3'), k('s3')],
    ]);
    await c.close();
    await rec.connections[connIndex].closed;
    const items = withoutMarkers(parse(rec.connections[connIndex].chunks));
    assertSizesCover(parse(rec.connections[connIndex].chunks), rec, connIndex);
    const res = items.map((i) => i.response as Record<string, unknown>);
    assert.equal(res[0].type, 'map');
    const hello = res[0].value as Record<string, unknown>;
    assert.equal(hello.server, 'redis');
    assert.equal(hello.proto, 3);
    assert.deepEqual(res[2], { type: 'map', value: { f1: 'v1', f2: 'v2' } });
    assert.deepEqual(res[4], { type: 'double', value: 1.5 });
    assert.deepEqual(res[5], { type: 'null', value: null });
    assert.deepEqual(res[7], { type: 'set', value: ['only'] });
    assert.deepEqual(res[8], { type: 'boolean', value: true });
    assert.deepEqual(res[9], { type: 'big number', value: '123456789012345678901234567890' });
    assert.deepEqual(res[10], { type: 'double', value: -2.25 });
    assert.deepEqual(res[11], { type: 'error', value: 'bad thing' });
    assert.deepEqual(res[12], { type: 'array', value: [1, { a: 1 }, 0.5] });
    assert.equal(res[13].type, 'verbatim string');
    assert.equal(res[13].format, 'txt');
    assert.match(res[13].value as string, /^id=\d+ addr=127\.0\.0\.1:\d+ /);
    assert.deepEqual(res[14], { type: 'integer', value: 3 });
  });

  test('RESP3 CLIENT TRACKING invalidation push: an item of its own, pairing unaffected', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    await c.run([['HELLO', '3'], ['CLIENT', 'TRACKING', 'ON'], ['SET', k('t'), '1'], ['GET', k('t')]]);
    await c.run([['SET', k('t'), '2'], ['GET', k('t')], ['DEL', k('t')]]);
    await c.close();
    await rec.connections[connIndex].closed;
    const items = withoutMarkers(parse(rec.connections[connIndex].chunks));
    const pushes = items.filter((i) => i.request === null);
    assert.ok(pushes.length >= 1, 'at least one invalidation push');
    for (const p of pushes) {
      assert.equal(p.error, undefined);
      assert.deepEqual(p.response, { type: 'push', value: ['invalidate', [k('t')]] });
    }
    const paired = items.filter((i) => i.request !== null).map((i) => [(i.request as { command: string }).command, (i.response as { value: unknown }).value]);
    assert.deepEqual(paired.slice(2), [['SET', 'OK'], ['GET', '1'], ['SET', 'OK'], ['GET', '2'], ['DEL', 1]]);
  });

  test('RESP2 pub/sub: confirmations grouped per command, deliveries as pushes, PING in subscribe mode', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    const pub = await direct();
    const ch1 = k('ch1');
    const ch2 = k('ch2');
    await c.run([['SUBSCRIBE', ch1, ch2]], { subscribeMode: true });
    await pub.run([['PUBLISH', ch1, 'hello'], ['PUBLISH', ch2, 'wörld']]);
    await c.waitFor('wörld');
    await c.run([['PSUBSCRIBE', k('p*')]], { subscribeMode: true });
    await pub.run([['PUBLISH', k('px'), 'pattern-msg']]);
    await c.waitFor('pattern-msg');
    // No arguments: one confirmation per subscribed channel; the pattern subscription remains (count never 0).
    await c.run([['UNSUBSCRIBE']], { subscribeMode: true });
    await c.run([['PUNSUBSCRIBE', k('p*')], ['GET', k('x')]]);
    await c.close();
    await rec.connections[connIndex].closed;
    const items = withoutMarkers(parse(rec.connections[connIndex].chunks));
    const view = items.map((i) => ({ cmd: (i.request as { command?: string } | null)?.command ?? null, type: (i.response as { type: string }).type, value: (i.response as { value: unknown }).value, error: i.error }));
    // UNSUBSCRIBE-all walks the server's channel table: its order is not defined.
    const unsub = view[5].value as Array<[string, string, number]>;
    assert.deepEqual(unsub.map((x) => x[2]), [2, 1]);
    assert.deepEqual(unsub.map((x) => x[1]).sort(), [ch1, ch2].sort());
    view[5].value = [['unsubscribe', ch1, 2], ['unsubscribe', ch2, 1]];
    assert.deepEqual(view, [
      { cmd: 'SUBSCRIBE', type: 'array', value: [['subscribe', ch1, 1], ['subscribe', ch2, 2]], error: undefined },
      { cmd: null, type: 'push', value: ['message', ch1, 'hello'], error: undefined },
      { cmd: null, type: 'push', value: ['message', ch2, 'wörld'], error: undefined },
      { cmd: 'PSUBSCRIBE', type: 'array', value: [['psubscribe', k('p*'), 3]], error: undefined },
      { cmd: null, type: 'push', value: ['pmessage', k('p*'), k('px'), 'pattern-msg'], error: undefined },
      { cmd: 'UNSUBSCRIBE', type: 'array', value: [['unsubscribe', ch1, 2], ['unsubscribe', ch2, 1]], error: undefined },
      { cmd: 'PUNSUBSCRIBE', type: 'array', value: [['punsubscribe', k('p*'), 0]], error: undefined },
      { cmd: 'GET', type: 'null', value: null, error: undefined },
    ]);
  });

  test('RESP3 pub/sub: push confirmations, a normal command while subscribed', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    const pub = await direct();
    const ch = k('ch3');
    await c.run([['HELLO', '3'], ['SUBSCRIBE', ch]]);
    await pub.run([['PUBLISH', ch, 'r3-msg']]);
    await c.waitFor('r3-msg');
    await c.run([['SET', k('r3'), 'v'], ['GET', k('r3')], ['UNSUBSCRIBE', ch], ['DEL', k('r3')]]);
    await c.close();
    await rec.connections[connIndex].closed;
    const items = withoutMarkers(parse(rec.connections[connIndex].chunks)).slice(1);
    const view = items.map((i) => [(i.request as { command?: string } | null)?.command ?? null, (i.response as { type: string }).type, (i.response as { value: unknown }).value]);
    assert.deepEqual(view, [
      ['SUBSCRIBE', 'push', [['subscribe', ch, 1]]],
      [null, 'push', ['message', ch, 'r3-msg']],
      ['SET', 'simple string', 'OK'],
      ['GET', 'bulk string', 'v'],
      ['UNSUBSCRIBE', 'push', [['unsubscribe', ch, 0]]],
      ['DEL', 'integer', 1],
    ]);
  });

  test('MULTI/EXEC, inline commands, CLIENT REPLY OFF/SKIP, a blocking BLPOP answered later', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    const other = await direct();
    await c.run([['MULTI'], ['SET', k('m'), '5'], ['INCR', k('m')], ['EXEC']]);
    const marker = 'mk-inline-' + Date.now();
    await c.sendUntil(Buffer.concat([Buffer.from(`PING\r\nSET ${k('inl')} "a b\\x41"\r\nGET ${k('inl')}\r\n`), encodeCommand(['ECHO', marker])]), marker);
    await c.run([['CLIENT', 'REPLY', 'OFF'], ['SET', k('r'), '1'], ['CLIENT', 'REPLY', 'ON'], ['GET', k('r')], ['CLIENT', 'REPLY', 'SKIP'], ['SET', k('r'), '2'], ['GET', k('r')]]);
    c.socket.write(encodeCommand(['BLPOP', k('q'), '0']));
    await new Promise((r) => setTimeout(r, 50));
    await other.run([['RPUSH', k('q'), 'job-1']]);
    await c.waitFor('job-1');
    await c.run([['DEL', k('m'), k('inl'), k('r'), k('q')]]);
    await c.close();
    await rec.connections[connIndex].closed;
    const items = withoutMarkers(parse(rec.connections[connIndex].chunks));
    assertSizesCover(parse(rec.connections[connIndex].chunks), rec, connIndex);
    const view = items.map((i) => [i.request, i.response, i.error]);
    assert.deepEqual(view, [
      [req('MULTI'), { type: 'simple string', value: 'OK' }, undefined],
      [req('SET', k('m'), '5'), { type: 'simple string', value: 'QUEUED' }, undefined],
      [req('INCR', k('m')), { type: 'simple string', value: 'QUEUED' }, undefined],
      [req('EXEC'), { type: 'array', value: ['OK', 6] }, undefined],
      [{ ...req('PING'), inline: true }, { type: 'simple string', value: 'PONG' }, undefined],
      [{ ...req('SET', k('inl'), 'a bA'), inline: true }, { type: 'simple string', value: 'OK' }, undefined],
      [{ ...req('GET', k('inl')), inline: true }, { type: 'bulk string', value: 'a bA' }, undefined],
      [req('CLIENT', 'REPLY', 'OFF'), null, undefined],
      [req('SET', k('r'), '1'), null, undefined],
      [req('CLIENT', 'REPLY', 'ON'), { type: 'simple string', value: 'OK' }, undefined],
      [req('GET', k('r')), { type: 'bulk string', value: '1' }, undefined],
      [req('CLIENT', 'REPLY', 'SKIP'), null, undefined],
      [req('SET', k('r'), '2'), null, undefined],
      [req('GET', k('r')), { type: 'bulk string', value: '2' }, undefined],
      [req('BLPOP', k('q'), '0'), { type: 'array', value: [k('q'), 'job-1'] }, undefined],
      [req('DEL', k('m'), `${k('inl')} ${k('r')} ${k('q')}`), { type: 'integer', value: 3 }, undefined],
    ]);
  });

  test('passwords never reach items: AUTH, HELLO AUTH (real refusals), CONFIG SET, ACL SETUSER, MIGRATE', async () => {
    const c = await client();
    const connIndex = rec.connections.length - 1;
    await c.run([['AUTH', 'hunter2-a'], ['AUTH', 'someone', 'hunter2-b'], ['HELLO', '2', 'AUTH', 'someone', 'hunter2-c', 'SETNAME', 'x']]);
    await c.close();
    await rec.connections[connIndex].closed;
    const items = withoutMarkers(parse(rec.connections[connIndex].chunks));
    assert.equal(items.length, 3);
    assert.ok(!JSON.stringify(items).includes('hunter2'), 'no password in any item');
    assert.deepEqual(items.map((i) => i.request), [
      { command: 'AUTH', key: '(redacted)', value: '', redacted: true },
      { command: 'AUTH', key: 'someone', value: '(redacted)', redacted: true },
      { command: 'HELLO', key: '2', value: 'AUTH someone (redacted) SETNAME x', redacted: true },
    ]);
    for (const i of items) assert.equal((i.response as { type: string }).type, 'error', 'the server refused them (no password is set)');
    const { items: crafted, parser } = newRedisParser();
    parser.onData(0, encodeCommands([
      ['CONFIG', 'SET', 'maxmemory', '1gb', 'requirepass', 'hunter2-d'],
      ['ACL', 'SETUSER', 'bob', 'on', '>hunter2-e', '#abcdef', '~*'],
      ['MIGRATE', 'h', '1', 'k', '0', '5', 'AUTH2', 'u', 'hunter2-f', 'KEYS', 'a'],
      ['CONFIG', 'GET', 'requirepass'],
    ]), 1);
    parser.onClose(2, 'fin');
    assert.ok(!JSON.stringify(crafted).includes('hunter2'));
    assert.deepEqual(crafted.map((i) => i.request?.value), [
      'maxmemory 1gb requirepass (redacted)', 'bob on >(redacted) #(redacted) ~*', '1 k 0 5 AUTH2 u (redacted) KEYS a', 'requirepass',
    ]);
    assert.equal(crafted[3].request?.redacted, undefined);
  });
});

// ---------------------------------------------------------------------------
// Crafted streams: gaps, timeouts, adversarial bytes. Built from real replies
// recorded once, so the bytes are Redis' own.

let recorded: RecordedChunk[] = [];
let recordedCmds: Cmd[] = [];

describe('redis: gaps, timeouts and bounds', () => {
  before(async () => {
    // One pipelined batch with a 5000-byte value, recorded for the crafted tests below.
    const c = await client();
    const connIndex = rec.connections.length - 1;
    recordedCmds = [
      ['SET', k('g1'), 'x'.repeat(5000)], ['GET', k('g1')], ['INCR', k('g2')], ['INCR', k('g2')], ['PING'], ['DEL', k('g1'), k('g2')],
    ];
    await c.run(recordedCmds);
    await c.close();
    await rec.connections[connIndex].closed;
    recorded = rec.connections[connIndex].chunks;
  });

  /** The recorded stream as two contiguous buffers with fixed timestamps: requests at t=1000, replies at t=2000. */
  function streams(): { c: Buffer; s: Buffer } {
    return {
      c: Buffer.concat(recorded.filter((x) => x.dir === 0).map((x) => x.data)),
      s: Buffer.concat(recorded.filter((x) => x.dir === 1).map((x) => x.data)),
    };
  }

  function commandOffsets(): number[] {
    const offs: number[] = [];
    let o = 0;
    for (const cmd of recordedCmds) {
      offs.push(o);
      o += encodeCommand(cmd).length;
    }
    offs.push(o);
    return offs;
  }

  test('a gap inside a bulk payload keeps the framing: only that item is marked', () => {
    const { c, s } = streams();
    const { items, parser } = newRedisParser();
    const cut = 1000; // inside the 5000-byte value of the first SET
    parser.onData(0, c.subarray(0, 100), 1000);
    parser.onGap(0, cut, 1000);
    parser.onData(0, c.subarray(100 + cut), 1000);
    // Response side: lose 500 bytes inside GET's 5000-byte bulk reply (which starts after "+OK\r\n").
    const getStart = 5 + '$5000\r\n'.length;
    parser.onData(1, s.subarray(0, getStart + 10), 2000);
    parser.onGap(1, 500, 2000);
    parser.onData(1, s.subarray(getStart + 10 + 500), 2000);
    parser.onClose(3000, 'fin');
    const got = withoutMarkers(items);
    assert.equal(got.length, recordedCmds.length);
    assert.match(got[0].error ?? '', /capture gap: 1000 bytes lost in the request/);
    assert.equal((got[0].request as { truncated?: boolean }).truncated, true);
    assert.match(got[1].error ?? '', /capture gap: 500 bytes lost in the response/);
    assert.deepEqual(got.slice(2).map((i) => [(i.request as { command: string }).command, (i.response as { value: unknown }).value, i.error]), [
      ['INCR', 1, undefined], ['INCR', 2, undefined], ['PING', 'PONG', undefined], ['DEL', 2, undefined],
    ]);
  });

  test('a request-side gap swallowing a whole command queues a placeholder: later pairs stay right', () => {
    const { c, s } = streams();
    const offs = commandOffsets();
    const { items, parser } = newRedisParser();
    parser.onData(0, c.subarray(0, offs[2]), 1000);
    parser.onGap(0, offs[3] - offs[2], 1000); // the first INCR
    parser.onData(0, c.subarray(offs[3]), 1000);
    parser.onData(1, s, 2000);
    parser.onClose(3000, 'fin');
    const got = withoutMarkers(items);
    assert.equal(got[2].request, null);
    assert.deepEqual(got[2].response, { type: 'integer', value: 1 });
    assert.match(got[2].error ?? '', /capture gap: \d+ bytes lost in the request/);
    assert.deepEqual(got.map((i) => (i.request as { command?: string } | null)?.command ?? null), ['SET', 'GET', null, 'INCR', 'PING', 'DEL']);
    assert.deepEqual((got[3].response as { value: unknown }).value, 2);
    assert.equal(parser.stats.gaps, 1);
  });

  test('a gap mid-command: partial command kept with the error; replies older than a command are not paired with it', () => {
    const { c, s } = streams();
    const offs = commandOffsets();
    const { items, parser } = newRedisParser();
    // Lose from the middle of the first INCR's header to the middle of the second INCR: two commands gone.
    const from = offs[2] + 14; // after "*2\r\n$4\r\nINCR\r\n": the command name was seen
    const to = offs[3] + 6;
    parser.onData(0, c.subarray(0, from), 1000);
    parser.onGap(0, to - from, 1000);
    // The rest of the client stream is captured later than the replies to the lost commands.
    parser.onData(0, c.subarray(to), 2500);
    const replies = s;
    const r = [5, 5 + 5000 + 9, 5 + 5000 + 9 + 4, 5 + 5000 + 9 + 8]; // +OK | $5000..| :1 | :2 | +PONG...
    parser.onData(1, replies.subarray(0, r[2]), 2000);
    parser.onData(1, replies.subarray(r[2], r[3]), 2400); // reply to the second INCR, before PING was sent
    parser.onData(1, replies.subarray(r[3]), 3000);
    parser.onClose(4000, 'fin');
    const got = withoutMarkers(items);
    const view = got.map((i) => [(i.request as { command?: string } | null)?.command ?? null, (i.response as { value?: unknown } | null)?.value, Boolean(i.error)]);
    assert.deepEqual(view, [
      ['SET', 'OK', false],
      ['GET', 'x'.repeat(5000), false],
      ['INCR', 1, true], // the placeholder keeps the partial command's name
      [null, 2, true], // older than PING: not PING's reply
      ['PING', 'PONG', false],
      ['DEL', 2, false],
    ]);
    assert.match(got[2].error ?? '', /capture gap/);
    assert.match(got[3].error ?? '', /response without a request/);
  });

  test('a response-side gap at a message boundary fails the oldest command; the rest pair', () => {
    const { c, s } = streams();
    const { items, parser } = newRedisParser();
    parser.onData(0, c, 1000);
    parser.onData(1, s.subarray(0, 5), 2000); // +OK
    parser.onGap(1, 5000 + 9, 2000); // the whole GET reply
    parser.onData(1, s.subarray(5 + 5000 + 9), 2000);
    parser.onClose(3000, 'fin');
    const got = withoutMarkers(items);
    assert.equal(got[1].response, null);
    assert.match(got[1].error ?? '', /capture gap: 5009 bytes lost in the response/);
    assert.deepEqual(got.slice(2).map((i) => (i.response as { value: unknown }).value), [1, 2, 'PONG', 2]);
  });

  test('timeouts: unanswered -> error item at pairTimeoutMs; a late reply keeps its FIFO place', () => {
    const { items, parser } = newRedisParser({ pairTimeoutMs: 1000 });
    parser.onData(0, encodeCommand(['GET', 'a']), 10_000);
    parser.onTick(10_999);
    assert.equal(items.length, 0);
    parser.onTick(11_000);
    assert.equal(items.length, 1);
    assert.equal(items[0].error, 'request timed out without response');
    assert.equal(items[0].response, null);
    parser.onData(0, encodeCommand(['GET', 'b']), 12_000);
    parser.onData(1, Buffer.from('$1\r\nA\r\n$1\r\nB\r\n'), 12_001);
    assert.equal(items.length, 3);
    assert.equal(items[1].request, null);
    assert.match(items[1].error ?? '', /after its request was reported/);
    assert.deepEqual([items[2].request?.key, items[2].response?.value, items[2].error], ['b', 'B', undefined]);
  });

  test('blocking commands wait for their own timeout; commands behind them do not time out first', () => {
    const { items, parser } = newRedisParser({ pairTimeoutMs: 1000 });
    parser.onData(0, encodeCommands([['BLPOP', 'q', '0'], ['PING']]), 0);
    parser.onTick(1_000_000);
    assert.equal(items.length, 0, 'BLPOP 0 blocks forever: no timeout');
    parser.onData(1, Buffer.from('*2\r\n$1\r\nq\r\n$1\r\nv\r\n+PONG\r\n'), 1_000_001);
    assert.deepEqual(items.map((i) => [i.request?.command, i.response?.value, i.error]), [['BLPOP', ['q', 'v'], undefined], ['PING', 'PONG', undefined]]);
    const b = newRedisParser({ pairTimeoutMs: 1000 });
    b.parser.onData(0, encodeCommands([['BRPOP', 'q', '2.5'], ['XREAD', 'BLOCK', '100', 'STREAMS', 's', '$'], ['GET', 'x']]), 0);
    b.parser.onTick(3499);
    assert.equal(b.items.length, 0, 'BRPOP may block 2.5 s, plus pairTimeoutMs');
    b.parser.onData(1, Buffer.from('*-1\r\n'), 3499);
    // XREAD starts only now on the server: its 100 ms + pairTimeoutMs run from BRPOP's reply.
    b.parser.onTick(3499 + 1099);
    assert.deepEqual(b.items.map((i) => i.request?.command), ['BRPOP']);
    b.parser.onTick(3499 + 1100);
    // After a timeout the next command keeps its own (long past) deadline: a silent backlog flushes at once.
    assert.deepEqual(b.items.map((i) => [i.request?.command, i.error]), [
      ['BRPOP', undefined], ['XREAD', 'request timed out without response'], ['GET', 'request timed out without response'],
    ]);
  });

  test('onClose flushes pending and partial messages with errors', () => {
    const { items, parser } = newRedisParser();
    parser.onData(0, Buffer.concat([encodeCommands([['GET', 'a'], ['GET', 'b']]), Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\n')]), 1);
    parser.onData(1, Buffer.from('$5\r\nhel'), 2);
    parser.onClose(3, 'rst');
    assert.deepEqual(items.map((i) => [i.request?.key, i.error]), [
      ['a', 'connection ended in the middle of the response'],
      ['', 'connection ended in the middle of the request'],
      ['b', 'no response before the connection ended (rst)'],
    ]);
  });

  test('replies without a command, RESP3 attributes, nested errors, unsafe integers, odd map keys', () => {
    const { items, parser } = newRedisParser();
    parser.onData(1, Buffer.from('+OK\r\n'), 1);
    parser.onData(0, encodeCommands([['X'], ['Y']]), 2);
    parser.onData(1, Buffer.from('|1\r\n+ttl\r\n:3600\r\n$2\r\nhi\r\n*3\r\n-ERR inner\r\n:9007199254740993\r\n%2\r\n:1\r\n+one\r\n$9\r\n__proto__\r\n#f\r\n'), 3);
    parser.onClose(4, 'fin');
    assert.deepEqual([items[0].request, items[0].error], [null, 'response without a request']);
    assert.deepEqual(items[1].response, { type: 'bulk string', value: 'hi', attributes: { ttl: 3600 } });
    const v = items[2].response?.value as unknown[];
    assert.deepEqual(v[0], { error: 'ERR inner' });
    assert.equal(v[1], '9007199254740993');
    assert.equal(JSON.stringify(v[2]), '{"1":"one","__proto__":false}');
    assert.equal(Object.getPrototypeOf(v[2]), Object.prototype, 'a "__proto__" key does not change the prototype');
  });

  test('adversarial: a 2^31 bulk length streams without buffering (memory bounded)', () => {
    const { items, parser } = newRedisParser({ maxBodyBytes: 4096 });
    parser.onData(0, encodeCommand(['GET', 'k']), 1);
    parser.onData(1, Buffer.from('$2147483647\r\n'), 2);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let maxHeld = 0;
    for (let i = 0; i < 1024; i++) {
      // 64 MiB through the parser
      parser.onData(1, chunk, 3);
      maxHeld = Math.max(maxHeld, parser.bufferedBytes());
    }
    assert.ok(maxHeld < 64 * 1024, `held ${maxHeld} bytes`);
    parser.onClose(4, 'end');
    assert.equal(items.length, 1);
    assert.equal(items[0].error, 'connection ended in the middle of the response');
    // The same on the request side.
    const b = newRedisParser({ maxBodyBytes: 4096 });
    b.parser.onData(0, Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2147483648\r\n'), 1);
    for (let i = 0; i < 256; i++) b.parser.onData(0, chunk, 2);
    assert.ok(b.parser.bufferedBytes() < 64 * 1024);
  });

  test('adversarial: deep nesting, huge arrays, endless lines, junk: errors, no throw, bounded', () => {
    const deep = newRedisParser();
    deep.parser.onData(0, encodeCommand(['GET', 'k']), 1);
    deep.parser.onData(1, Buffer.from('*1\r\n'.repeat(100_000) + ':1\r\n'), 2);
    assert.ok(deep.parser.stats.protocolErrors >= 1);
    assert.match(deep.items[0].error ?? '', /nested too deep/);
    assert.ok(deep.parser.bufferedBytes() < 1024);

    const huge = newRedisParser();
    huge.parser.onData(0, encodeCommand(['LRANGE', 'k', '0', '-1']), 1);
    huge.parser.onData(1, Buffer.from('*200000\r\n'), 2);
    const el = Buffer.from(':7\r\n'.repeat(1000));
    for (let i = 0; i < 200; i++) huge.parser.onData(1, el, 2);
    assert.equal(huge.items.length, 1);
    const v = huge.items[0].response?.value as number[];
    assert.equal(v.length, MAX_NODES - 1, 'elements kept up to the node cap (the array is one node)');
    assert.equal(huge.items[0].response?.truncated, true);
    assert.equal(huge.items[0].responseSize, '*200000\r\n'.length + 200_000 * 4);

    const long = newRedisParser();
    long.parser.onData(0, encodeCommand(['GET', 'k']), 1);
    const a = Buffer.alloc(16 * 1024, 0x61);
    long.parser.onData(1, Buffer.from('+'), 2);
    for (let i = 0; i < 64; i++) long.parser.onData(1, a, 2);
    assert.match(long.items[0].error ?? '', /line too long/);
    assert.ok(long.parser.bufferedBytes() < 80 * 1024);

    const flood = newRedisParser();
    for (let i = 0; i < MAX_PENDING + 500; i++) flood.parser.onData(0, encodeCommand(['PING']), i);
    assert.equal(flood.parser.pending(), MAX_PENDING);
    assert.equal(flood.parser.stats.evicted, 500);
    assert.equal(flood.items.length, 500);
    assert.match(flood.items[0].error ?? '', /evicted/);
  });

  test('fuzz: mutated real streams, random splits and gaps never throw; state stays bounded', () => {
    const sources = [recorded, ...rec.connections.slice(0, 8).map((x) => x.chunks)];
    const rand = rng(20240601);
    const pick = (n: number) => Math.floor(rand() * n);
    let itemsTotal = 0;
    for (let iter = 0; iter < 400; iter++) {
      const src = sources[iter % sources.length];
      const { items, parser } = newRedisParser({ maxBodyBytes: 1 + pick(4096), pairTimeoutMs: 1 + pick(5000) });
      let t = 0;
      for (const chunk of src) {
        const d = Buffer.from(chunk.data);
        // Mutations: flip bytes, insert junk, cut a range.
        const flips = pick(4);
        for (let f = 0; f < flips && d.length; f++) d[pick(d.length)] = pick(256);
        let data = d;
        if (rand() < 0.1) data = Buffer.concat([d.subarray(0, pick(d.length + 1)), Buffer.from(Array.from({ length: pick(40) }, () => pick(256))), d.subarray(pick(d.length + 1))]);
        if (rand() < 0.05) data = data.subarray(pick(data.length + 1));
        for (let i = 0; i < data.length; ) {
          const n = 1 + pick(300);
          parser.onData(chunk.dir, data.subarray(i, i + n), (t += pick(20)));
          i += n;
          if (rand() < 0.01) parser.onGap(pick(2) as 0 | 1, 1 + pick(10_000), t);
          if (rand() < 0.02) parser.onTick(t);
        }
        assert.ok(parser.bufferedBytes() < 16 * 1024 * 1024);
      }
      parser.onClose(t + 1, 'end');
      assert.equal(parser.pending(), 0);
      assert.equal(parser.stats.internalErrors, 0);
      for (const it of items) {
        assert.equal(it.protocol.name, 'redis');
        JSON.stringify(it);
      }
      itemsTotal += items.length;
    }
    assert.ok(itemsTotal > 400);
  });
});

describe('redis: probe', () => {
  test('recognises real first bytes of both directions', async () => {
    const conns = rec.connections.slice(0, 5);
    assert.ok(conns.length > 0);
    const other = tcpConn(7777);
    for (const c of conns) {
      const first0 = c.chunks.find((x) => x.dir === 0)!.data;
      const first1 = c.chunks.find((x) => x.dir === 1)!.data;
      assert.equal(redisDissector.probe(first0, 0, other), 'yes', 'command array, no port hint needed');
      assert.equal(redisDissector.probe(first1, 1, tcpConn()), 'yes');
      for (let n = 1; n < Math.min(first0.length, 12); n++) assert.notEqual(probeRedisCommand(first0.subarray(0, n), false), 'no', `prefix ${n}`);
    }
  });

  test('inline commands only with the port hint; other protocols are refused', () => {
    const inline = Buffer.from('PING\r\n');
    assert.equal(probeRedisCommand(inline, true), 'yes');
    assert.equal(probeRedisCommand(inline, false), 'no');
    assert.equal(probeRedisCommand(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), true), 'no');
    assert.equal(probeRedisCommand(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), false), 'no');
    assert.equal(probeRedisCommand(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), true), 'no');
    assert.equal(probeRedisCommand(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), false), 'no');
    assert.equal(probeRedisReply(Buffer.from('+OK POP3 server ready\r\n'), false), 'no', 'a POP3 greeting');
    assert.equal(probeRedisReply(Buffer.from('+OK\r\n'), false), 'yes');
    assert.equal(probeRedisReply(Buffer.from('-ERR unknown command\r\n'), false), 'yes');
    assert.equal(probeRedisReply(Buffer.from('HTTP/1.1 200 OK\r\n'), true), 'no');
    assert.equal(probeRedisReply(Buffer.from(':irc.example.net 001 nick :Welcome\r\n'), false), 'no');
    assert.equal(probeRedisReply(Buffer.from('*2\r\n$1\r\na\r\n'), false), 'yes');
    assert.equal(probeRedisReply(Buffer.from('*2\r\n'), false), 'more');
    assert.equal(probeRedisReply(Buffer.from('%1\r\n+a\r\n'), false), 'yes');
  });

  test('probe never throws on random bytes', () => {
    const rand = rng(7);
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
      if (rand() < 0.5 && b.length) b[0] = '*+-:$%~>_#,(!=|'.charCodeAt(Math.floor(rand() * 15));
      const r0 = redisDissector.probe(b, 0, tcpConn());
      const r1 = redisDissector.probe(b, 1, tcpConn());
      assert.ok(['yes', 'no', 'more'].includes(r0) && ['yes', 'no', 'more'].includes(r1));
    }
  });
});

// A quiet guard: the tests above must have actually talked to Redis (not skipped on a missing server).
test('redis: the real server answered through the recorder', () => {
  assert.ok(rec.connections.length >= 10, `recorded ${rec.connections.length} connections`);
  void net;
});
