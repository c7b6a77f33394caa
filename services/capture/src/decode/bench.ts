/**
 * Decoder micro-benchmark for `npm run bench` (never a timed test): decodes
 * one prepared Ethernet/IPv4/TCP frame with a 512-byte payload `n` times into a
 * reused DecodedPacket and returns frames per second.
 */
import { LINKTYPE, newDecodedPacket } from '../types.ts';
import { buildFrame, frameOf } from '../testing/packet-builder.ts';
import { Decoder } from './decoder.ts';

export function benchDecode(n = 10_000_000): number {
  const data = buildFrame({
    link: 'ethernet',
    ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' },
    tcp: { srcPort: 40000, dstPort: 80, seq: 1, ack: 1, flags: 'PA', payload: Buffer.alloc(512, 0x61) },
  });
  const frame = frameOf(data, 1_700_000_000_000, LINKTYPE.ETHERNET);
  const decoder = new Decoder();
  const out = newDecodedPacket();
  const warm = Math.min(n, 100_000);
  for (let i = 0; i < warm; i++) decoder.decode(frame, out);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    frame.tsMs += 0.001;
    decoder.decode(frame, out);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // A bench that measured the error path would be a lie: every frame must have decoded.
  if (decoder.stats.ok !== warm + n || out.payloadLength !== 512) throw new Error(`benchDecode: frames did not decode (stats ${JSON.stringify(decoder.stats)})`);
  return n / seconds;
}
