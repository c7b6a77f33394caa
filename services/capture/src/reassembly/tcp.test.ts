import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionInfo, ProbeResult, StreamDissector } from '../types.ts';
import { Reassembly, type ReassemblyOptions } from './index.ts';
import { PacketFeeder, TcpPair, nullSink, recorder, type Recorded, type Recorder } from './test-helpers.ts';

function setup(o: Partial<ReassemblyOptions> = {}, rec: Recorder = recorder('rec')) {
  const r = new Reassembly({ sink: nullSink, streamDissectors: [rec.dissector], ...o });
  const f = new PacketFeeder(r);
  const pair = (client = '10.0.0.1:40000', server = '10.0.0.2:80', isnC = 1000, isnS = 5000) => new TcpPair(f, client, server, isnC, isnS);
  return { r, f, rec, pair };
}

function only<E extends Recorded['ev']>(log: Recorded[], ev: E): Extract<Recorded, { ev: E }>[] {
  return log.filter((e): e is Extract<Recorded, { ev: E }> => e.ev === ev);
}

describe('TCP reassembly: order', () => {
  it('delivers in-order bytes of both directions with their timestamps, client and server from the handshake', () => {
    const { r, rec, pair } = setup();
    const c = pair('10.0.0.1:40000', '10.0.0.2:80');
    c.handshake(1);
    c.send(0, 0, 'GET / HTTP/1.1\r\n', 2);
    c.send(0, 16, 'Host: a\r\n\r\n', 3);
    c.send(1, 0, 'HTTP/1.1 200 OK\r\n\r\n', 4);
    assert.deepEqual(
      rec.log.map((e) => (e.ev === 'data' ? [e.dir, e.text, e.ts] : e.ev)),
      [[0, 'GET / HTTP/1.1\r\n', 2], [0, 'Host: a\r\n\r\n', 3], [1, 'HTTP/1.1 200 OK\r\n\r\n', 4]],
    );
    const info = rec.conns[0];
    assert.deepEqual(info.client, { ip: '10.0.0.1', port: 40000 });
    assert.deepEqual(info.server, { ip: '10.0.0.2', port: 80 });
    assert.equal(info.handshakeSeen, true);
    assert.equal(info.transport, 'tcp');
    assert.equal(info.ipVersion, 4);
    const s = r.stats();
    assert.equal(s.tcpBytesDelivered, 16 + 11 + 19);
    assert.equal(s.tcpConnectionsOpened, 1);
    assert.equal(s.tcpHandshakesSeen, 1);
    assert.equal(r.activeFlows, 1);
  });

  it('puts out-of-order and reversed segments back in order (copying what it holds)', () => {
    const { r, rec, pair } = setup();
    const c = pair();
    c.handshake();
    c.send(0, 6, 'world ', 1);
    c.send(0, 0, 'hello ', 2);
    assert.equal(rec.text(1, 0), 'hello world ');
    // Ten segments, last first.
    for (let i = 9; i >= 0; i--) c.send(0, 12 + i * 2, String(i).repeat(2), 10 + i);
    assert.equal(rec.text(1, 0), 'hello world 00112233445566778899');
    // Held segments keep their own timestamps.
    const ts = only(rec.log, 'data').map((e) => e.ts);
    assert.deepEqual(ts.slice(0, 2), [2, 1]);
    assert.deepEqual(ts.slice(2), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.equal(r.stats().tcpSegmentsOutOfOrder, 10);
    assert.equal(r.stats().tcpBufferedBytes, 0);
  });

  it('delivers retransmissions and partial overlaps once; the first copy wins', () => {
    const { r, rec, pair } = setup();
    const c = pair();
    c.handshake();
    c.send(0, 0, '0123456789');
    c.send(0, 0, '0123456789'); // retransmission
    c.send(0, 5, '56789abcde'); // half old, half new
    assert.equal(rec.text(1, 0), '0123456789abcde');
    assert.equal(r.stats().tcpRetransmittedBytes, 15);
    // Out of order: [20,25) held, then [18,30) overlapping it with other bytes, then the hole [15,18).
    c.send(0, 20, 'KLMNO');
    c.send(0, 18, 'xxxxxxxxxxxx');
    c.send(0, 15, 'fgh');
    assert.equal(rec.text(1, 0), '0123456789abcdefghxxKLMNOxxxxx');
    assert.equal(r.stats().tcpOverlapBytes, 5);
    // An in-order segment over held bytes yields to them too.
    c.send(0, 40, 'HELD');
    c.send(0, 30, '==========hel d=====');
    assert.equal(rec.text(1, 0), '0123456789abcdefghxxKLMNOxxxxx==========HELDd=====');
    assert.equal(r.stats().tcpOverlapBytes, 9);
    assert.equal(r.stats().tcpBytesDelivered, 50);
  });

  it('crosses the 2^32 sequence number wrap', () => {
    const { r, rec, pair } = setup();
    const c = pair('10.0.0.1:40000', '10.0.0.2:80', 0xffff_fff0, 0xffff_fff9);
    c.handshake();
    let want = '';
    for (let i = 0; i < 8; i++) {
      const chunk = `chunk${i}`; // 6 bytes: the client's stream wraps inside the third segment
      c.send(0, i * 6, chunk);
      want += chunk;
    }
    c.send(0, 0, 'chunk0'); // a retransmission from before the wrap, seen after it: old
    assert.equal(rec.text(1, 0), want);
    // Server: its first data byte is seq 0xfffffffa; segments after the wrap arrive first.
    c.send(1, 8, 'IJKL'); // seq 2
    c.send(1, 4, 'EFGH'); // seq 0xfffffffe..1
    c.send(1, 0, 'ABCD');
    assert.equal(rec.text(1, 1), 'ABCDEFGHIJKL');
    assert.equal(r.stats().tcpRetransmittedBytes, 6);
    assert.equal(r.stats().tcpBufferedBytes, 0);
  });
});

describe('TCP reassembly: who is the client', () => {
  it('takes the SYN sender as client even when the ports say otherwise', () => {
    const { rec, pair } = setup();
    const c = pair('10.0.0.2:8080', '10.0.0.1:45000'); // the client uses a service port
    c.handshake();
    c.send(0, 0, 'ping');
    c.send(1, 0, 'pong');
    assert.deepEqual(rec.conns[0].client, { ip: '10.0.0.2', port: 8080 });
    assert.equal(rec.conns[0].handshakeSeen, true);
    assert.equal(rec.text(1, 0), 'ping');
    assert.equal(rec.text(1, 1), 'pong');
  });

  it('takes the SYN-ACK sender as server when the SYN was missed', () => {
    const { rec, pair } = setup();
    const c = pair('10.0.0.2:8080', '10.0.0.1:45000');
    c.raw(1, 5000, 1001, 'SA', '', 0);
    c.send(0, 0, 'ping');
    assert.deepEqual(rec.conns[0].server, { ip: '10.0.0.1', port: 45000 });
    assert.equal(rec.conns[0].handshakeSeen, true);
    assert.equal(rec.text(1, 0), 'ping');
  });

  it('picks up a connection mid-stream: first seq is the base, the service port is the server', () => {
    const { r, rec, pair } = setup();
    const c = pair('10.0.0.9:51000', '10.0.0.2:6379', 7_000_000, 9_000_000);
    // The server's reply is the first thing seen.
    c.send(1, 100, '+OK\r\n', 1);
    c.send(0, 50, '*1\r\n$4\r\nPING\r\n', 2);
    c.send(1, 105, '+PONG\r\n', 3);
    const info = rec.conns[0];
    assert.equal(info.handshakeSeen, false);
    assert.deepEqual(info.server, { ip: '10.0.0.2', port: 6379 });
    assert.deepEqual(info.client, { ip: '10.0.0.9', port: 51000 });
    assert.equal(rec.text(1, 1), '+OK\r\n+PONG\r\n');
    assert.equal(rec.text(1, 0), '*1\r\n$4\r\nPING\r\n');
    assert.equal(r.stats().tcpMidStreamPickups, 1);
  });

  it('without service ports mid-stream, the lower port is the server', () => {
    const { rec, f } = setup();
    f.send({ src: '10.0.0.1', dst: '10.0.0.2', sport: 31000, dport: 47000, seq: 1, payload: 'x' });
    assert.deepEqual(rec.conns[0].server, { ip: '10.0.0.1', port: 31000 });
    assert.equal(only(rec.log, 'data')[0].dir, 1);
  });

  it('a bare ACK neither opens a connection nor sets the base (keepalives sit at next-1)', () => {
    const { r, rec, pair } = setup();
    const c = pair();
    c.send(0, 9, ''); // pure ACK of an unknown flow: ignored
    assert.equal(r.activeFlows, 0);
    assert.equal(r.stats().tcpPacketsWithoutConnection, 1);
    c.send(1, 0, 'a');
    c.send(0, 9, '', 0, 'A'); // the client's keepalive
    c.send(0, 10, 'req');
    assert.equal(rec.text(1, 0), 'req');
    assert.equal(r.stats().tcpGaps, 0);
  });

  it('numbers connections capture-wide in order of first packet, TCP and UDP alike', () => {
    const { r, rec, pair, f } = setup();
    pair('10.0.0.1:40000', '10.0.0.2:80').handshake();
    f.send({ src: '10.0.0.1', dst: '10.0.0.53', sport: 5353, dport: 53, protocol: 17, payload: 'q' });
    const b = pair('10.0.0.1:40001', '10.0.0.2:80');
    b.handshake();
    b.send(0, 0, 'x');
    pair('10.0.0.1:40000', '10.0.0.2:80').send(0, 0, 'y');
    assert.deepEqual(rec.conns.map((x) => x.id), [3, 1]);
    assert.equal(r.activeFlows, 3);
  });
});

describe('TCP reassembly: closing', () => {
  it('FIN from both sides closes with fin, after the data', () => {
    const { r, rec, pair } = setup();
    const c = pair();
    c.handshake();
    c.send(0, 0, 'abc');
    c.fin(0, 3, 5);
    assert.equal(only(rec.log, 'close').length, 0, 'a half-close keeps the stream open');
    c.send(1, 0, 'xyz');
    c.fin(1, 3, 6);
    assert.deepEqual(only(rec.log, 'close'), [{ ev: 'close', conn: 1, reason: 'fin', ts: 6, parser: 'rec' }]);
    assert.equal(r.activeFlows, 0);
    c.send(0, 4, '', 7); // the last ACK: no new connection
    assert.equal(r.activeFlows, 0);
    assert.equal(r.stats().tcpClosedFin, 1);
  });

  it('waits for data before a FIN to arrive, then closes', () => {
    const { rec, pair } = setup();
    const c = pair();
    c.handshake();
    c.send(0, 0, 'ab');
    c.send(0, 4, 'ef', 0, 'FPA'); // FIN with data, past a hole
    c.fin(1, 0);
    assert.equal(only(rec.log, 'close').length, 0);
    c.send(0, 2, 'cd'); // the retransmission fills the hole
    assert.equal(rec.text(1, 0), 'abcdef');
    assert.equal(only(rec.log, 'close')[0].reason, 'fin');
    assert.equal(only(rec.log, 'gap').length, 0);
  });

  it('a FIN pair with a hole that never fills closes after the linger, with the gap', () => {
    const { r, rec, pair } = setup({ finLingerMs: 1000, tickIntervalMs: 100 });
    const c = pair();
    c.handshake();
    c.send(0, 0, 'ab', 10);
    c.send(0, 4, 'ef', 10, 'FPA');
    c.fin(1, 0, 10);
    r.tick(500);
    assert.equal(only(rec.log, 'close').length, 0);
    r.tick(1010);
    assert.deepEqual(rec.log.filter((e) => e.ev !== 'tick').map((e) => (e.ev === 'data' ? e.text : e.ev === 'gap' ? `gap${e.length}` : e.ev === 'close' ? e.reason : '')), ['ab', 'gap2', 'ef', 'fin']);
    assert.equal(r.activeFlows, 0);
  });

  it('RST closes with rst', () => {
    const { r, rec, pair } = setup();
    const c = pair();
    c.handshake();
    c.send(0, 0, 'abc');
    c.rst(1, 0, 9);
    assert.deepEqual(only(rec.log, 'close'), [{ ev: 'close', conn: 1, reason: 'rst', ts: 9, parser: 'rec' }]);
    assert.equal(r.stats().tcpClosedRst, 1);
    assert.equal(r.activeFlows, 0);
  });

  it('an idle connection closes with timeout on tick, by capture time', () => {
    const { r, rec, pair } = setup({ tcpIdleTimeoutMs: 10_000 });
    const c = pair();
    c.handshake(1000);
    c.send(0, 0, 'abc', 2000);
    r.tick(11_999);
    assert.equal(only(rec.log, 'close').length, 0);
    r.tick(12_000);
    assert.deepEqual(only(rec.log, 'close'), [{ ev: 'close', conn: 1, reason: 'timeout', ts: 12_000, parser: 'rec' }]);
    assert.equal(r.stats().tcpClosedTimeout, 1);
    assert.equal(r.stats().flowsExpired, 1);
  });

  it('end() closes everything with end', () => {
    const { r, rec, pair } = setup();
    pair('10.0.0.1:40000', '10.0.0.2:80').send(0, 0, 'a');
    pair('10.0.0.1:40001', '10.0.0.2:80').send(0, 0, 'b');
    r.end(50);
    assert.deepEqual(only(rec.log, 'close').map((e) => [e.conn, (e as { reason: string }).reason, e.ts]).sort(), [[1, 'end', 50], [2, 'end', 50]]);
    assert.equal(r.stats().tcpClosedEnd, 2);
    assert.equal(r.activeFlows, 0);
  });

  it('a new SYN on the same 4-tuple closes the old connection and starts a new one; a repeated SYN does not', () => {
    const { r, rec, pair } = setup();
    const c = pair('10.0.0.1:40000', '10.0.0.2:80', 100, 200);
    c.handshake();
    c.raw(0, 100, 0, 'S', '', 1); // retransmitted SYN
    c.send(0, 0, 'old');
    const again = pair('10.0.0.1:40000', '10.0.0.2:80', 9000, 9500);
    again.handshake(5);
    again.send(0, 0, 'new');
    assert.deepEqual(only(rec.log, 'close').map((e) => [e.conn, (e as { reason: string }).reason]), [[1, 'timeout']]);
    assert.equal(rec.text(1, 0), 'old');
    assert.equal(rec.text(2, 0), 'new');
    assert.equal(r.stats().tcpClosedReused, 1);
    assert.equal(r.stats().tcpConnectionsOpened, 2);
  });
});

describe('TCP reassembly: holes', () => {
  it('a lost segment becomes exactly one onGap when the buffer limit is passed, and the stream goes on', () => {
    const { r, rec, pair } = setup({ maxBufferedBytesPerDirection: 1000 });
    const c = pair();
    c.handshake();
    c.send(0, 0, 'A'.repeat(100), 1);
    // Segment [100, 200) is lost; ten more arrive (1000 bytes held: at the limit, not past it).
    for (let i = 2; i <= 11; i++) c.send(0, i * 100, String.fromCharCode(64 + i).repeat(100), i);
    assert.equal(only(rec.log, 'gap').length, 0);
    assert.equal(r.stats().tcpBufferedBytes, 1000);
    c.send(0, 1200, 'L'.repeat(100), 12);
    const gaps = only(rec.log, 'gap');
    assert.deepEqual(gaps, [{ ev: 'gap', conn: 1, dir: 0, length: 100, ts: 12, parser: 'rec' }]);
    const text = rec.text(1, 0);
    assert.equal(text.length, 1200);
    assert.equal(text, 'A'.repeat(100) + 'BCDEFGHIJKL'.split('').map((ch) => ch.repeat(100)).join(''));
    // The gap comes between the bytes before and after the hole.
    const order = rec.log.filter((e) => e.ev !== 'tick').map((e) => (e.ev === 'gap' ? 'gap' : e.ev === 'data' ? e.text[0] : e.ev));
    assert.deepEqual(order.slice(0, 3), ['A', 'gap', 'B']);
    // The missing segment arriving late is old news.
    c.send(0, 100, '?'.repeat(100), 13);
    c.send(0, 1300, 'M', 14);
    assert.equal(rec.text(1, 0).slice(-2), 'LM');
    const s = r.stats();
    assert.equal(s.tcpGaps, 1);
    assert.equal(s.tcpGapBytes, 100);
    assert.equal(s.tcpBufferEvictions, 1);
    assert.equal(s.tcpBufferedBytes, 0);
    assert.equal(s.tcpRetransmittedBytes, 100);
  });

  it('data waiting past a hole is delivered at close after one onGap', () => {
    for (const how of ['end', 'rst', 'timeout'] as const) {
      const { r, rec, pair } = setup({ tcpIdleTimeoutMs: 1000 });
      const c = pair();
      c.handshake();
      c.send(0, 0, 'abc', 1);
      c.send(0, 10, 'klm', 2);
      c.send(0, 13, 'nop', 3);
      c.send(1, 0, 'reply', 4);
      if (how === 'end') r.end(100);
      else if (how === 'rst') c.rst(1, 5, 100);
      else r.tick(1004);
      const seq = rec.log.filter((e) => e.ev !== 'tick').map((e) => (e.ev === 'data' ? `${e.dir}:${e.text}` : e.ev === 'gap' ? `gap${e.dir}:${e.length}` : e.ev === 'close' ? e.reason : ''));
      assert.deepEqual(seq, ['0:abc', '1:reply', 'gap0:7', '0:klm', '0:nop', how], how);
    }
  });

  it('a FIN past lost data yields a gap at close', () => {
    const { rec, pair, r } = setup();
    const c = pair();
    c.handshake();
    c.send(0, 0, 'abc');
    c.fin(0, 8); // five bytes lost before the FIN
    c.fin(1, 0);
    r.end(1);
    assert.deepEqual(only(rec.log, 'gap').map((e) => [e.dir, (e as { length: number }).length]), [[0, 5]]);
  });

  it('a segment cut by the snap length makes the next one continue after a gap at once', () => {
    const { r, rec, pair } = setup();
    const c = pair();
    c.handshake();
    c.send(0, 0, 'head', 1, 'PA', 96); // 100 bytes on the wire, 4 captured
    c.send(0, 100, 'next', 2);
    assert.deepEqual(rec.log.map((e) => (e.ev === 'data' ? e.text : e.ev === 'gap' ? e.length : e.ev)), ['head', 96, 'next']);
    assert.equal(r.stats().tcpTruncatedSegments, 1);
    assert.equal(r.stats().tcpBufferedBytes, 0);
  });

  it('measures a gap across the 2^32 wrap', () => {
    const { rec, pair } = setup({ maxBufferedBytesPerDirection: 4 });
    const c = pair('10.0.0.1:40000', '10.0.0.2:80', 0xffff_fff0);
    c.handshake();
    c.send(0, 0, 'abc');
    c.send(0, 20, 'vwxyz'); // seq 5: 17 bytes lost across the wrap, 5 held > 4
    assert.deepEqual(rec.log.map((e) => (e.ev === 'data' ? e.text : e.ev === 'gap' ? e.length : e.ev)), ['abc', 17, 'vwxyz']);
  });

  it('memory stays bounded under a flood of out-of-order data', () => {
    const limit = 64 * 1024;
    const { r, rec, pair } = setup({ maxBufferedBytesPerDirection: limit });
    const c = pair();
    c.handshake();
    c.send(0, 0, 'start');
    const chunk = Buffer.alloc(1000, 0x61);
    let maxHeld = 0;
    // Every other 1000-byte segment is missing: holes everywhere.
    for (let i = 0; i < 2000; i++) {
      c.send(0, 5 + (2 * i + 1) * 1000, chunk);
      maxHeld = Math.max(maxHeld, r.stats().tcpBufferedBytes);
    }
    assert.ok(maxHeld <= limit, `held ${maxHeld}`);
    assert.ok(maxHeld > limit - 1000, 'the buffer was used up to its limit');
    // 1-byte segments are capped by count as well (limit / 64 of them), in the other direction.
    const heldBefore = r.stats().tcpBufferedBytes;
    let maxHeld1 = 0;
    for (let i = 0; i < 20_000; i++) {
      c.send(1, 2 * i + 1, 'x');
      maxHeld1 = Math.max(maxHeld1, r.stats().tcpBufferedBytes - heldBefore);
    }
    assert.equal(maxHeld1, limit / 64);
    const s = r.stats();
    assert.ok(s.tcpGaps > 1000, `gaps ${s.tcpGaps}`);
    // Every byte sent is either delivered or still held: none lost, none twice.
    assert.equal(s.tcpBytesDelivered + s.tcpBufferedBytes, 5 + 2000 * 1000 + 20_000);
    // And it still delivers: nothing wedged.
    assert.ok(rec.text(1, 0).length > 1_900_000);
  });

  it('the capture-wide buffer limit bounds many connections together', () => {
    const { r, pair } = setup({ maxBufferedBytesPerDirection: 1 << 20, maxBufferedBytesTotal: 50_000 });
    let maxHeld = 0;
    for (let k = 0; k < 100; k++) {
      const c = pair(`10.0.1.${k}:40000`, '10.0.0.2:80');
      c.handshake();
      c.send(0, 0, 'x');
      for (let i = 0; i < 5; i++) c.send(0, 1 + (2 * i + 1) * 1000, Buffer.alloc(1000));
      maxHeld = Math.max(maxHeld, r.stats().tcpBufferedBytes);
    }
    assert.ok(maxHeld <= 51_000, `held ${maxHeld}`);
    assert.ok(r.stats().tcpBufferEvictions > 0);
  });
});

describe('TCP reassembly: choosing the dissector by content', () => {
  const startsWith = (prefix: string) => (data: Buffer): ProbeResult => {
    const s = data.toString('latin1');
    if (s.startsWith(prefix)) return 'yes';
    return prefix.startsWith(s) ? 'more' : 'no';
  };

  it('asks in order; the first yes wins', () => {
    const log: Recorded[] = [];
    const a = recorder('a', { probe: () => 'yes', log });
    const b = recorder('b', { probe: () => 'yes', log });
    const r = new Reassembly({ sink: nullSink, streamDissectors: [a.dissector, b.dissector] });
    const c = new TcpPair(new PacketFeeder(r), '10.0.0.1:40000', '10.0.0.2:80');
    c.handshake();
    c.send(0, 0, 'hi');
    assert.equal(a.conns.length, 1);
    assert.equal(b.conns.length, 0);
    assert.equal(b.probes.length, 0);
    assert.equal(a.text(1, 0), 'hi');
  });

  it('an earlier "more" holds back a later "yes"; then its "yes" wins; all buffered bytes are replayed', () => {
    const log: Recorded[] = [];
    const h2 = recorder('h2', { probe: startsWith('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), log });
    const h1 = recorder('h1', { probe: (d) => (d.includes('\r\n') ? 'yes' : 'more'), log });
    const r = new Reassembly({ sink: nullSink, streamDissectors: [h2.dissector, h1.dissector] });
    const c = new TcpPair(new PacketFeeder(r), '10.0.0.1:40000', '10.0.0.2:80');
    c.handshake();
    c.send(0, 0, 'PRI * HTTP/2.0\r\n', 1); // h1 would say yes to this line
    assert.equal(h1.conns.length + h2.conns.length, 0);
    c.send(0, 16, '\r\nSM\r\n\r\n', 2);
    c.send(0, 24, 'frames', 3);
    assert.equal(h2.conns.length, 1);
    assert.equal(h1.conns.length, 0);
    assert.deepEqual(only(log, 'data').map((e) => [e.text, e.ts]), [['PRI * HTTP/2.0\r\n', 1], ['\r\nSM\r\n\r\n', 2], ['frames', 3]]);
    // Probes saw everything so far of the direction each time.
    assert.deepEqual(h2.probes.map((p) => p.text.length), [16, 24]);
  });

  it('replays both directions in their original interleaving, with gaps in place', () => {
    // Decides only once the server's greeting and the client's command have both been seen.
    let seen = 0;
    const rec = recorder('late', { probe: (_d, dir) => { seen |= 1 << dir; return seen === 3 ? 'yes' : 'more'; } });
    const { rec: r2, pair, r } = setup({ maxBufferedBytesPerDirection: 3 }, rec);
    const c = pair();
    c.handshake();
    c.send(1, 0, 'greeting ', 1);
    c.send(1, 9, 'more ', 2);
    c.send(1, 20, 'abcd', 3); // hole [14, 20): held, then gapped at once (4 > 3)
    c.send(0, 0, 'command', 4);
    c.send(1, 24, '!', 5);
    assert.deepEqual(
      r2.log.map((e) => (e.ev === 'data' ? [e.dir, e.text, e.ts] : e.ev === 'gap' ? [e.dir, `gap${e.length}`, e.ts] : [e.ev])),
      [[1, 'greeting ', 1], [1, 'more ', 2], [1, 'gap6', 3], [1, 'abcd', 3], [0, 'command', 4], [1, '!', 5]],
    );
    assert.equal(r.stats().tcpBytesDelivered, 9 + 5 + 4 + 7 + 1);
  });

  it('a stream every dissector refuses in both directions is unrecognized, counted and dropped cheaply', () => {
    const a = recorder('a', { probe: () => 'no' });
    const b = recorder('b', { probe: (_d, dir) => (dir === 0 ? 'no' : 'more') });
    const r = new Reassembly({ sink: nullSink, streamDissectors: [a.dissector, b.dissector] });
    const c = new TcpPair(new PacketFeeder(r), '10.0.0.1:40000', '10.0.0.2:80');
    c.handshake();
    c.send(0, 0, 'junk');
    assert.equal(r.stats().tcpUnrecognizedStreams, 0, 'the server may still speak a known protocol');
    c.send(1, 0, 'more junk');
    assert.equal(r.stats().tcpUnrecognizedStreams, 0);
    const probes = a.probes.length + b.probes.length;
    // Once the buffer of a direction is full, 'more' is 'no'.
    const big = Buffer.alloc(16 * 1024, 0x7a);
    c.send(1, 9, big);
    assert.equal(r.stats().tcpUnrecognizedStreams, 1);
    const after = a.probes.length + b.probes.length;
    assert.ok(after > probes);
    for (let i = 0; i < 100; i++) c.send(0, 4 + i * 10, '0123456789');
    assert.equal(a.probes.length + b.probes.length, after, 'no more probing');
    const s = r.stats();
    assert.equal(s.tcpUnrecognizedBytes, 4 + 9 + big.length + 1000);
    assert.equal(s.tcpBytesDelivered, 0);
    assert.equal(s.tcpBufferedBytes, 0);
    assert.equal(a.conns.length + b.conns.length, 0);
    c.fin(0, 1004);
    c.fin(1, 9 + big.length);
    assert.equal(r.activeFlows, 0);
    assert.equal(r.stats().tcpClosedFin, 1);
  });

  it('"no" from all dissectors on both directions decides at once; short undecided streams count at close', () => {
    const a = recorder('a', { probe: () => 'no' });
    const r = new Reassembly({ sink: nullSink, streamDissectors: [a.dissector] });
    const f = new PacketFeeder(r);
    const c = new TcpPair(f, '10.0.0.1:40000', '10.0.0.2:80');
    c.handshake();
    c.send(0, 0, 'x');
    c.send(1, 0, 'y');
    assert.equal(r.stats().tcpUnrecognizedStreams, 1);
    const m = recorder('m', { probe: () => 'more' });
    const r2 = new Reassembly({ sink: nullSink, streamDissectors: [m.dissector] });
    const c2 = new TcpPair(new PacketFeeder(r2), '10.0.0.1:40000', '10.0.0.2:80');
    c2.handshake();
    c2.fin(0, 0);
    c2.fin(1, 0);
    assert.equal(r2.stats().tcpUnrecognizedStreams, 0, 'an empty stream is not a probe failure');
    const c3 = new TcpPair(new PacketFeeder(r2), '10.0.0.1:40001', '10.0.0.2:80');
    c3.handshake();
    c3.send(0, 0, 'zz');
    r2.end(1);
    assert.equal(r2.stats().tcpUnrecognizedStreams, 1);
    assert.equal(r2.stats().tcpUnrecognizedBytes, 2);
  });

  it('a probe that throws counts as no', () => {
    const bad: StreamDissector = { name: 'bad', probe: () => { throw new Error('probe bug'); }, create: () => { throw new Error('never'); } };
    const good = recorder('good');
    const errors: string[] = [];
    const r = new Reassembly({ sink: nullSink, streamDissectors: [bad, good.dissector], onParserError: (e, _c, name) => errors.push(`${name}: ${(e as Error).message}`) });
    const c = new TcpPair(new PacketFeeder(r), '10.0.0.1:40000', '10.0.0.2:80');
    c.send(0, 0, 'data');
    assert.equal(good.text(1, 0), 'data');
    assert.equal(r.stats().probeErrors, 1);
    assert.deepEqual(errors, ['bad: probe bug']);
  });

  it('switchTo hands the stream to another registered dissector', () => {
    const log: Recorded[] = [];
    let switched: unknown = 'not called';
    let unknown: unknown = 'not called';
    const h1 = recorder('h1', {
      log,
      onData: (ctx, dir, data) => {
        const s = data.toString('latin1');
        const at = s.indexOf('UPGRADE\n');
        if (at < 0) return;
        log.push({ ev: 'data', conn: ctx.conn.id, dir, text: s.slice(0, at + 8), ts: 0, parser: 'h1' });
        unknown = ctx.switchTo('nope');
        const next = ctx.switchTo('h2');
        switched = next;
        next?.onData(dir, data.subarray(at + 8), 0);
        return 'handled';
      },
    });
    const h2 = recorder('h2', { probe: () => 'no', log });
    const r = new Reassembly({ sink: nullSink, streamDissectors: [h1.dissector, h2.dissector] });
    const c = new TcpPair(new PacketFeeder(r), '10.0.0.1:40000', '10.0.0.2:80');
    c.handshake();
    c.send(0, 0, 'hello UPGRADE\nframe1');
    c.send(0, 20, 'frame2');
    c.send(1, 0, 'reply');
    c.fin(0, 26, 9);
    c.fin(1, 5, 9);
    assert.equal(unknown, null);
    assert.notEqual(switched, null);
    assert.equal(h2.conns[0], h1.conns[0]);
    assert.deepEqual(log.map((e) => `${e.parser}:${e.ev === 'data' ? e.text : e.ev}`), ['h1:hello UPGRADE\n', 'h2:frame1', 'h2:frame2', 'h2:reply', 'h2:close']);
  });
});

describe('TCP reassembly: misbehaving parsers', () => {
  it('a parser that throws breaks only its own stream', () => {
    const errors: [string, number][] = [];
    const rec = recorder('rec', {
      onData: (_ctx, _dir, data) => {
        if (data.toString('latin1').includes('boom')) throw new Error('parser bug');
      },
    });
    const { r, pair } = setup({ onParserError: (e, conn, name) => errors.push([`${name} ${(e as Error).message}`, (conn as ConnectionInfo).id]) }, rec);
    const bad = pair('10.0.0.1:40000', '10.0.0.2:80');
    const good = pair('10.0.0.1:40001', '10.0.0.2:80');
    bad.handshake();
    good.handshake();
    bad.send(0, 0, 'ok ');
    bad.send(0, 3, 'boom');
    bad.send(0, 7, 'more after');
    good.send(0, 0, 'fine ');
    bad.send(0, 17, 'still more');
    good.send(0, 5, 'and fine');
    r.tick(1);
    bad.fin(0, 27);
    bad.fin(1, 0);
    good.fin(0, 13);
    good.fin(1, 0);
    assert.equal(rec.text(1, 0), 'ok ');
    assert.equal(rec.text(2, 0), 'fine and fine');
    assert.deepEqual(errors, [['rec parser bug', 1]]);
    // The broken parser got nothing more: no tick, no close.
    assert.deepEqual(rec.log.filter((e) => e.conn === 1).map((e) => e.ev), ['data']);
    assert.deepEqual(rec.log.filter((e) => e.conn === 2).map((e) => e.ev), ['data', 'data', 'tick', 'close']);
    const s = r.stats();
    assert.equal(s.parserErrors, 1);
    assert.equal(s.tcpBrokenStreams, 1);
    assert.equal(s.tcpBrokenBytes, 10 + 10);
    assert.equal(s.tcpClosedFin, 2);
  });

  it('exceptions from create, onGap, onTick and onClose are caught and counted too', () => {
    for (const where of ['create', 'onGap', 'onTick', 'onClose'] as const) {
      const d: StreamDissector = {
        name: 'x',
        probe: () => 'yes',
        create: () => {
          if (where === 'create') throw new Error(where);
          const boom = (w: string) => () => { if (w === where) throw new Error(w); };
          return { onData: () => {}, onGap: boom('onGap'), onTick: boom('onTick'), onClose: boom('onClose') };
        },
      };
      const r = new Reassembly({ sink: nullSink, streamDissectors: [d], maxBufferedBytesPerDirection: 1 });
      const c = new TcpPair(new PacketFeeder(r), '10.0.0.1:40000', '10.0.0.2:80');
      c.send(0, 0, 'a');
      c.send(0, 5, 'bb'); // held past the 1-byte limit: gap
      r.tick(10);
      r.end(20);
      assert.equal(r.stats().parserErrors, 1, where);
      assert.equal(r.activeFlows, 0);
    }
  });
});

describe('TCP reassembly: flow limits', () => {
  it('evicts the least recently used connection when the table is full, closing it', () => {
    const { r, rec, pair } = setup({ maxFlows: 2 });
    const a = pair('10.0.0.1:40000', '10.0.0.2:80');
    const b = pair('10.0.0.1:40001', '10.0.0.2:80');
    a.send(0, 0, 'a', 1);
    b.send(0, 0, 'b', 2);
    a.send(0, 1, 'a', 3); // b is now the oldest
    pair('10.0.0.1:40002', '10.0.0.2:80').send(0, 0, 'c', 4);
    assert.deepEqual(only(rec.log, 'close').map((e) => [e.conn, (e as { reason: string }).reason, e.ts]), [[2, 'timeout', 4]]);
    const s = r.stats();
    assert.equal(s.flowsEvicted, 1);
    assert.equal(s.tcpClosedEvicted, 1);
    assert.equal(r.activeFlows, 2);
    a.send(0, 2, 'a', 5);
    assert.equal(rec.text(1, 0), 'aaa');
  });

  it('a flood of 200k SYNs never grows the table past maxFlows', () => {
    const rec = recorder('rec', { probe: () => 'more' });
    const r = new Reassembly({ sink: nullSink, streamDissectors: [rec.dissector], maxFlows: 10_000 });
    const f = new PacketFeeder(r);
    let peak = 0;
    for (let i = 0; i < 200_000; i++) {
      f.send({ src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '10.255.0.1', sport: 40000, dport: 80, seq: i, flags: 'S', ts: i });
      if (r.activeFlows > peak) peak = r.activeFlows;
    }
    assert.equal(peak, 10_000);
    const s = r.stats();
    assert.equal(s.tcpConnectionsOpened, 200_000);
    assert.equal(s.flowsEvicted, 190_000);
    assert.equal(s.tcpClosedEvicted, 190_000);
    r.end(200_000);
    assert.equal(r.stats().tcpClosedEnd, 10_000);
    assert.equal(r.activeFlows, 0);
  });
});

describe('TCP reassembly: ticks', () => {
  it('calls parsers\' onTick at most every tickIntervalMs of capture time', () => {
    const { r, rec, pair } = setup({ tickIntervalMs: 1000 });
    pair().send(0, 0, 'x');
    for (let t = 0; t <= 3000; t += 250) r.tick(t);
    assert.deepEqual(only(rec.log, 'tick').map((e) => e.ts), [0, 1000, 2000, 3000]);
  });
});

describe('TCP reassembly: IPv6', () => {
  it('reassembles over IPv6 with the address text set once', () => {
    const { rec, pair } = setup();
    const c = pair('[2001:db8::1]:40000', '[2001:db8::2]:443');
    c.handshake();
    c.send(0, 3, 'def');
    c.send(0, 0, 'abc');
    assert.equal(rec.text(1, 0), 'abcdef');
    assert.deepEqual(rec.conns[0].client, { ip: '2001:db8::1', port: 40000 });
    assert.equal(rec.conns[0].ipVersion, 6);
  });
});
