/** Reassembly.onPacket tells which stream (ConnectionInfo.id) a packet went to; onStreamEnd tells when a stream is over. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionInfo, DecodedPacket } from '../types.ts';
import { Reassembly, type ReassemblyOptions } from './index.ts';
import { PacketFeeder, TcpPair, datagramRecorder, nullSink, recorder } from './test-helpers.ts';

function setup(o: Partial<ReassemblyOptions> = {}) {
  const ended: ConnectionInfo[] = [];
  const rec = recorder('rec');
  const dns = datagramRecorder('dns', (p) => p.toString('latin1').startsWith('dns'));
  const r = new Reassembly({
    sink: nullSink, streamDissectors: [rec.dissector], datagramDissectors: [dns.dissector], onStreamEnd: (c) => ended.push(c), ...o,
  });
  const ids: number[] = [];
  const f = new PacketFeeder({ onPacket: (p: DecodedPacket) => { ids.push(r.onPacket(p)); } });
  const pair = (client: string, server: string) => new TcpPair(f, client, server);
  const udp = (src: string, dst: string, payload: string, ts = 0) => {
    const [sip, sport] = src.split(':');
    const [dip, dport] = dst.split(':');
    f.send({ src: sip, dst: dip, sport: Number(sport), dport: Number(dport), protocol: 17, payload, ts });
  };
  return { r, f, ids, ended, rec, pair, udp };
}

describe('stream ids of packets', () => {
  it('every packet of a TCP connection gets its id, the last ACK after both FINs too; strangers get 0', () => {
    const { ids, ended, rec, pair, f } = setup({ finLingerMs: 1000 });
    const a = pair('10.0.0.1:40000', '10.0.0.2:80');
    const b = pair('10.0.0.1:40001', '10.0.0.2:80');
    a.handshake(1);
    b.handshake(1);
    a.send(0, 0, 'GET / HTTP/1.1\r\n\r\n', 2);
    b.send(0, 0, 'hello', 2);
    a.send(1, 0, 'HTTP/1.1 200 OK\r\n\r\n', 3);
    a.fin(0, 18, 4);
    a.fin(1, 19, 5);
    assert.deepEqual(ended.map((c) => c.id), [1], 'the stream ended when both FINs were in');
    a.send(0, 19, '', 6, 'A'); // the last ACK: no connection left, still stream 1
    f.send({ src: '10.9.9.9', dst: '10.0.0.2', sport: 1234, dport: 80, flags: 'A', ts: 6 }); // an ACK of a connection never seen
    a.send(0, 19, '', 2000, 'A'); // long after the close: no longer attributed
    assert.deepEqual(ids, [1, 1, 1, 2, 2, 2, 1, 2, 1, 1, 1, 1, 0, 0]);
    assert.equal(rec.conns[0].id, 1);
    assert.equal(rec.conns[1].id, 2);
  });

  it('RST ends the stream; the trailing packet keeps the id; a new SYN on the same 4-tuple is a new stream', () => {
    const { ids, ended, pair } = setup();
    const a = pair('10.0.0.1:40000', '10.0.0.2:80');
    a.handshake(1);
    a.send(0, 0, 'x', 2);
    a.rst(1, 0, 3);
    a.send(0, 1, '', 3, 'A');
    assert.deepEqual(ended.map((c) => c.id), [1]);
    a.handshake(4);
    assert.deepEqual(ids, [1, 1, 1, 1, 1, 1, 2, 2, 2]);
  });

  it('UDP datagrams get their flow id (shared numbering with TCP); other protocols get 0; end() ends every stream once', () => {
    const { r, ids, ended, pair, udp, f } = setup();
    udp('10.0.0.1:5000', '10.0.0.53:53', 'dns q', 1);
    pair('10.0.0.1:40000', '10.0.0.2:80').handshake(2);
    udp('10.0.0.53:53', '10.0.0.1:5000', 'dns a', 3);
    udp('10.0.0.1:5001', '10.0.0.53:53', 'not dns', 3);
    f.send({ src: '10.0.0.1', dst: '10.0.0.2', sport: 0, dport: 0, protocol: 1, ts: 4 });
    assert.deepEqual(ids, [1, 2, 2, 2, 1, 3, 0]);
    r.end(10);
    assert.deepEqual(ended.map((c) => c.id).sort(), [1, 2, 3]);
    r.end(11);
    assert.equal(ended.length, 3);
  });

  it('an onStreamEnd that throws is reported, capture goes on', () => {
    const errors: string[] = [];
    const { ids, pair } = setup({ onStreamEnd: () => { throw new Error('boom'); }, onParserError: (e, _c, d) => errors.push(`${d}: ${(e as Error).message}`) });
    const a = pair('10.0.0.1:40000', '10.0.0.2:80');
    a.handshake(1);
    a.rst(0, 0, 2);
    a.handshake(3);
    assert.deepEqual(errors, ['stream-end: boom']);
    assert.deepEqual(ids, [1, 1, 1, 1, 2, 2, 2]);
  });
});
