import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Reassembly, UDP_PROBE_ATTEMPTS, type ReassemblyOptions } from './index.ts';
import { PacketFeeder, datagramRecorder, nullSink, recorder, type DatagramRecorder } from './test-helpers.ts';

const isDns = (p: Buffer) => p.toString('latin1').startsWith('dns');

function setup(dissectors: DatagramRecorder[], o: Partial<ReassemblyOptions> = {}) {
  const r = new Reassembly({ sink: nullSink, datagramDissectors: dissectors.map((d) => d.dissector), ...o });
  const f = new PacketFeeder(r);
  const udp = (src: string, dst: string, payload: string, ts = 0) => {
    const [sip, sport] = src.split(':');
    const [dip, dport] = dst.split(':');
    f.send({ src: sip, dst: dip, sport: Number(sport), dport: Number(dport), protocol: 17, payload, ts });
  };
  return { r, f, udp };
}

describe('UDP dispatch', () => {
  it('direction 0 is from the first sender, the client', () => {
    const dns = datagramRecorder('dns', isDns);
    const { r, udp } = setup([dns]);
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns query', 1);
    udp('10.0.0.53:53', '10.0.0.1:40000', 'dns answer', 2);
    assert.deepEqual(dns.datagrams.map((d) => [d.dir, d.text, d.ts]), [[0, 'dns query', 1], [1, 'dns answer', 2]]);
    const conn = dns.datagrams[0].conn;
    assert.equal(dns.datagrams[1].conn, conn, 'one ConnectionInfo per flow');
    assert.deepEqual(conn.client, { ip: '10.0.0.1', port: 40000 });
    assert.deepEqual(conn.server, { ip: '10.0.0.53', port: 53 });
    assert.equal(conn.transport, 'udp');
    assert.equal(conn.handshakeSeen, false);
    assert.equal(r.stats().udpFlowsOpened, 1);
    assert.equal(r.activeFlows, 1);
  });

  it('a first datagram from port 53 to a client port is a response: its sender is the server', () => {
    const dns = datagramRecorder('dns', isDns);
    const { udp } = setup([dns]);
    udp('10.0.0.53:53', '10.0.0.1:40000', 'dns answer');
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns query');
    assert.deepEqual(dns.datagrams.map((d) => d.dir), [1, 0]);
    assert.deepEqual(dns.datagrams[0].conn.server, { ip: '10.0.0.53', port: 53 });
  });

  it('offers datagrams in dissector order; the first match sticks for the flow', () => {
    const other = datagramRecorder('other', (p) => p.toString('latin1').startsWith('other'));
    const dns = datagramRecorder('dns', isDns);
    const { udp } = setup([other, dns]);
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns query');
    udp('10.0.0.53:53', '10.0.0.1:40000', 'other-looking answer');
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns again');
    assert.deepEqual(dns.datagrams.map((d) => d.text), ['dns query', 'other-looking answer', 'dns again']);
    assert.equal(other.datagrams.length, 0);
    assert.equal(other.probes, 1);
    assert.equal(dns.probes, 1, 'no probing once decided');
  });

  it('gives up on a flow nobody claims after a few datagrams, counting them', () => {
    const dns = datagramRecorder('dns', isDns);
    const { r, udp } = setup([dns]);
    for (let i = 0; i < UDP_PROBE_ATTEMPTS + 5; i++) udp('10.0.0.1:40000', '10.0.0.2:443', `quic ${i}`);
    udp('10.0.0.1:40000', '10.0.0.2:443', 'dns lookalike later');
    assert.equal(dns.probes, UDP_PROBE_ATTEMPTS);
    assert.equal(dns.datagrams.length, 0);
    const s = r.stats();
    assert.equal(s.udpFlowsUnrecognized, 1);
    assert.equal(s.udpDatagramsUnrecognized, UDP_PROBE_ATTEMPTS + 6);
    assert.equal(s.udpDatagrams, UDP_PROBE_ATTEMPTS + 6);
  });

  it('an unmatched datagram does not stop a later one of the flow from matching', () => {
    const dns = datagramRecorder('dns', isDns);
    const { udp } = setup([dns]);
    udp('10.0.0.1:40000', '10.0.0.53:53', 'garbage');
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns query');
    assert.deepEqual(dns.datagrams.map((d) => d.text), ['dns query']);
  });

  it('forwards ticks at most every tickIntervalMs, and end', () => {
    const dns = datagramRecorder('dns', isDns);
    const { r } = setup([dns], { tickIntervalMs: 500 });
    for (let t = 0; t <= 1000; t += 100) r.tick(t);
    r.end(1234);
    assert.deepEqual(dns.ticks, [0, 500, 1000]);
    assert.deepEqual(dns.ends, [1234]);
  });

  it('UDP flows idle out on their own timeout, apart from TCP', () => {
    const dns = datagramRecorder('dns', isDns);
    const rec = recorder('rec');
    const { r, udp, f } = setup([dns], { udpIdleTimeoutMs: 1000, tcpIdleTimeoutMs: 60_000, streamDissectors: [rec.dissector] });
    f.send({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq: 1, payload: 'tcp', ts: 0 });
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns query', 0);
    r.tick(999);
    assert.equal(r.activeFlows, 2);
    r.tick(1000);
    assert.equal(r.activeFlows, 1);
    assert.equal(r.stats().udpFlowsExpired, 1);
    assert.equal(r.stats().tcpClosedTimeout, 0);
    // A datagram after expiry starts a new flow (and a new stream number).
    udp('10.0.0.53:53', '10.0.0.1:40000', 'dns late answer', 1500);
    assert.equal(dns.datagrams[1].conn.id, 3);
    assert.equal(dns.datagrams[1].dir, 1);
  });

  it('a dissector that throws stops getting that flow; other flows go on', () => {
    const errors: string[] = [];
    const dns = datagramRecorder('dns', isDns, (p) => { if (p.toString('latin1').includes('boom')) throw new Error('dns bug'); });
    const { r, udp } = setup([dns], { onParserError: (e, c, name) => errors.push(`${name}:${(e as Error).message}:${c?.id}`) });
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns boom');
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns after');
    udp('10.0.0.1:40001', '10.0.0.53:53', 'dns other flow');
    assert.deepEqual(dns.datagrams.map((d) => d.text), ['dns other flow']);
    assert.deepEqual(errors, ['dns:dns bug:1']);
    assert.equal(r.stats().datagramErrors, 1);
    assert.equal(r.stats().udpFlowsBroken, 1);
  });

  it('ignores packets that are neither TCP nor UDP, and empty datagrams', () => {
    const dns = datagramRecorder('dns', () => true);
    const { r, f, udp } = setup([dns]);
    f.send({ src: '10.0.0.1', dst: '10.0.0.2', sport: 0, dport: 0, protocol: 1, payload: 'icmp' });
    udp('10.0.0.1:40000', '10.0.0.53:53', '');
    assert.equal(r.stats().packetsIgnored, 1);
    assert.equal(dns.probes, 0);
    assert.equal(r.activeFlows, 1);
  });

  it('TCP and UDP share maxFlows', () => {
    const dns = datagramRecorder('dns', isDns);
    const { r, udp, f } = setup([dns], { maxFlows: 2 });
    udp('10.0.0.1:40000', '10.0.0.53:53', 'dns q', 1);
    f.send({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq: 1, payload: 'x', ts: 2 });
    f.send({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40001, dport: 80, seq: 1, payload: 'y', ts: 3 });
    assert.equal(r.activeFlows, 2);
    assert.equal(r.stats().udpFlowsEvicted, 1);
    assert.equal(r.stats().flowsEvicted, 1);
  });
});
