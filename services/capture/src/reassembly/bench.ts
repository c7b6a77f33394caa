/**
 * Reassembly throughput for `npm run bench` (a figure, never a timed test):
 * in-order TCP segments through one connection into a parser that counts
 * bytes, and the same spread round-robin over many connections (flow lookups
 * that miss the CPU cache). The DecodedPacket and its buffer are reused as
 * the real decoder does.
 */
import { newDecodedPacket, type StreamDissector } from '../types.ts';
import { Reassembly } from './index.ts';

export interface ReassemblyBenchResult extends Record<string, number> {
  segmentsPerSec: number;
  mbPerSec: number;
  /** Bytes the parser received (segments x segmentBytes when all is well). */
  bytesDelivered: number;
  manyFlowsSegmentsPerSec: number;
}

function run(segments: number, segmentBytes: number, flows: number): { secs: number; bytes: number } {
  let bytes = 0;
  const counting: StreamDissector = {
    name: 'count',
    probe: () => 'yes',
    create: () => ({ onData: (_d, data) => { bytes += data.length; }, onGap: () => {}, onTick: () => {}, onClose: () => {} }),
  };
  const r = new Reassembly({ sink: { emit: () => {} }, streamDissectors: [counting], maxFlows: Math.max(1024, flows * 2) });
  const p = newDecodedPacket();
  p.buf = Buffer.alloc(8 + segmentBytes, 0x61);
  p.ipVersion = 4;
  p.protocol = 6;
  p.srcAddrOffset = 0;
  p.dstAddrOffset = 4;
  p.payloadOffset = 8;
  p.buf.set([10, 0, 0, 1, 10, 0, 0, 2]);
  p.dstPort = 80;
  p.captureLength = p.length = p.buf.length;
  const seqs = new Uint32Array(flows);
  // Handshakes first, outside the timing.
  for (let f = 0; f < flows; f++) {
    p.srcPort = 1024 + (f % 60000);
    p.buf[2] = f >> 16; // keep 4-tuples distinct past 60,000 flows
    p.tcpFlags = 0x02;
    p.tcpSeq = f * 7919;
    p.payloadLength = 0;
    r.onPacket(p);
    seqs[f] = (f * 7919 + 1) >>> 0;
  }
  p.tcpFlags = 0x18;
  p.payloadLength = segmentBytes;
  const t0 = performance.now();
  for (let i = 0, f = 0; i < segments; i++) {
    p.srcPort = 1024 + (f % 60000);
    p.buf[2] = f >> 16;
    p.tcpSeq = seqs[f];
    seqs[f] = (seqs[f] + segmentBytes) >>> 0;
    p.tsMs = i * 0.01;
    r.onPacket(p);
    if (++f === flows) f = 0;
    if ((i & 0xffff) === 0) r.tick(p.tsMs);
  }
  const secs = (performance.now() - t0) / 1000;
  r.end(segments * 0.01);
  return { secs, bytes };
}

export async function runReassemblyBench(
  segments = 2_000_000, segmentBytes = 1460, flows = 10_000, log: (line: string) => void = console.log,
): Promise<ReassemblyBenchResult> {
  log(`\nreassembly: ${segments.toLocaleString('en-US')} in-order TCP segments of ${segmentBytes} bytes -> counting parser`);
  run(Math.min(segments, 200_000), segmentBytes, 1); // warm-up
  const one = run(segments, segmentBytes, 1);
  const many = run(segments, segmentBytes, flows);
  const result: ReassemblyBenchResult = {
    segmentsPerSec: segments / one.secs,
    mbPerSec: one.bytes / one.secs / 1e6,
    bytesDelivered: one.bytes,
    manyFlowsSegmentsPerSec: segments / many.secs,
  };
  log(`  ${'1 connection'.padEnd(44)} ${Math.round(result.segmentsPerSec).toLocaleString('en-US')} segments/s, ${Math.round(result.mbPerSec).toLocaleString('en-US')} MB/s`);
  log(`  ${`${flows.toLocaleString('en-US')} connections, round-robin`.padEnd(44)} ${Math.round(result.manyFlowsSegmentsPerSec).toLocaleString('en-US')} segments/s`);
  return result;
}

if (import.meta.main) await runReassemblyBench(Number(process.argv[2] ?? 2_000_000));
