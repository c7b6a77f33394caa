/**
 * The fuzz loop of capture-fuzz.test.ts, in a worker thread so the test can
 * stop it (and name the input) if a mutated capture ever made decoding spin:
 * a synchronous loop cannot be interrupted from the thread it blocks.
 *
 * Each iteration takes a real capture (a seed), mutates it either at the file
 * level (bit flips, bogus lengths, truncation, inserted/deleted bytes) or at
 * the packet level (the pcap stays valid, the frames inside carry garbage:
 * payload bytes, header fields, lost/duplicated/reordered/cut frames, IPv4
 * fragments, digits in text protocols), and runs it through readCaptureFile
 * and a CapturePipeline. It records anything that is not allowed: an error
 * other than CaptureFileError, an exception caught at a parser boundary (the
 * reassembly's and the dissectors' error counters), an item that does not
 * serialise, a run over the time bound.
 */
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { CaptureFileError, CapturePipeline, readCaptureFile } from '@wirescript/capture';
import { flowOf, writePcap } from '@wirescript/testing';
import { http1LastInternalError, http1Stats } from '../../services/capture/src/dissect/http1-stats.ts';
import { http2LastInternalError, http2Stats } from '../../services/capture/src/dissect/http2-stats.ts';
import { dnsDatagramDissector, dnsStreamDissector } from '../../services/capture/src/dissect/dns.ts';
import { redisDissector } from '../../services/capture/src/dissect/redis.ts';
import type { StreamDissector, StreamParser } from '../../services/capture/src/types.ts';
import { rng } from '@wirescript/testing';

export interface SeedRecord {
  sec: number;
  frac: number;
  origLen: number;
  data: Uint8Array;
}

export interface FuzzSeed {
  name: string;
  linkType: number;
  records: SeedRecord[];
}

export interface FuzzInput {
  seeds: FuzzSeed[];
  budgetMs: number;
  /** Iterations also stop here (whichever comes first). */
  maxIterations: number;
  baseSeed: number;
  perRunBoundMs: number;
}

export interface FuzzFailure {
  iteration: number;
  seed: number;
  input: string;
  what: string;
  /** The capture that failed (the test saves it, so it can be replayed: wirescript run x.js --pcap FILE). */
  bytes?: Uint8Array;
}

export interface FuzzResult {
  iterations: number;
  fileLevel: number;
  packetLevel: number;
  resolved: number;
  rejected: Record<string, number>;
  items: Record<string, number>;
  itemsWithError: number;
  frames: number;
  maxRunMs: number;
  slowest: string;
  failures: FuzzFailure[];
  heapUsedMb: number;
  /** Peaks over the run (sampled every 50 iterations), MiB. */
  peakHeapTotalMb: number;
  peakExternalMb: number;
  /** Live heap after a full GC, after the warm-up and after the last iteration, MiB: what the runs left behind. */
  retainedBeforeMb: number;
  retainedAfterMb: number;
  /** Redis and DNS-over-TCP parsers whose own error counters were checked (0 would mean the check saw nothing). */
  parsersChecked: number;
}

/** Messages to the test: 'ready' once warmed up, 'start' before each iteration (the watchdog's heartbeat), 'done' at the end. */
export type FuzzMessage =
  | { type: 'ready' }
  | { type: 'start'; iteration: number; seed: number; input: string }
  | { type: 'done'; result: FuzzResult };

/** Deterministic PRNG (mulberry32, shared with the fixtures) so a failing case can be replayed from its seed. */
export const prng = rng;

const INTERESTING32 = [0, 1, 7, 8, 15, 16, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x3ffff, 0x40000, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff];
const INTERESTING16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4000, 0x7fff, 0x8000, 0xfffe, 0xffff];
const BIG_NUMBERS = ['0', '-1', '99999999999999999999', '4294967296', '18446744073709551616', '2147483648', 'ffffffff', '1e9', ' 12', '00000000000000000001', ''];

export type Rec = { sec: number; frac: number; origLen: number; data: Buffer };

export class Mutator {
  readonly rnd: () => number;
  constructor(rnd: () => number) {
    this.rnd = rnd;
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** File level: the serialised capture itself is damaged. */
  file(src: Buffer, recordOffsets: number[]): { bytes: Buffer; how: string } {
    let b = Buffer.from(src);
    const how: string[] = [];
    for (let r = 1 + this.int(3); r > 0; r--) {
      const op = this.int(9);
      switch (op) {
        case 0: // bit flips
          for (let i = 1 + this.int(8); i > 0 && b.length > 0; i--) b[this.int(b.length)] ^= 1 << this.int(8);
          how.push('bitflip');
          break;
        case 1: // random bytes
          for (let i = 1 + this.int(16); i > 0 && b.length > 0; i--) b[this.int(b.length)] = this.int(256);
          how.push('bytes');
          break;
        case 2: { // an interesting 32-bit value anywhere
          if (b.length < 4) break;
          const at = this.int(b.length - 3);
          const v = this.pick(INTERESTING32);
          if (this.rnd() < 0.5) b.writeUInt32LE(v >>> 0, at);
          else b.writeUInt32BE(v >>> 0, at);
          how.push('u32');
          break;
        }
        case 3: { // a bogus length in a record header (captured or original length)
          const at = this.pick(recordOffsets) + (this.rnd() < 0.7 ? 8 : 12);
          if (at + 4 > b.length) break;
          b.writeUInt32LE(this.pick(INTERESTING32) >>> 0 || this.int(70000), at);
          how.push('reclen');
          break;
        }
        case 4: // truncation
          b = b.subarray(0, this.int(b.length + 1));
          how.push('truncate');
          break;
        case 5: { // inserted bytes
          const at = this.int(b.length + 1);
          b = Buffer.concat([b.subarray(0, at), this.bytes(1 + this.int(64)), b.subarray(at)]);
          how.push('insert');
          break;
        }
        case 6: { // deleted bytes
          const s = this.int(b.length + 1);
          b = Buffer.concat([b.subarray(0, s), b.subarray(Math.min(b.length, s + 1 + this.int(64)))]);
          how.push('delete');
          break;
        }
        case 7: { // a slice repeated
          const s = this.int(b.length + 1);
          const e = Math.min(b.length, s + this.int(512));
          const at = this.int(b.length + 1);
          b = Buffer.concat([b.subarray(0, at), b.subarray(s, e), b.subarray(at)]);
          how.push('dup');
          break;
        }
        default: // the file header
          if (b.length >= 24) {
            b[this.int(24)] = this.int(256);
            how.push('header');
          }
      }
    }
    return { bytes: b, how: `file:${how.join('+')}` };
  }

  /** Packet level: a valid pcap whose frames carry garbage. */
  packets(src: readonly Rec[]): { recs: Rec[]; how: string } {
    let recs: Rec[] = src.map((r) => ({ ...r, data: Buffer.from(r.data) }));
    const how: string[] = [];
    for (let r = 1 + this.int(4); r > 0 && recs.length > 0; r--) {
      const i = this.int(recs.length);
      const rec = recs[i];
      const f = flowOf(rec.data);
      const payload = f ? rec.data.length - f.payloadOffset : 0;
      const op = this.int(12);
      switch (op) {
        case 0: { // payload bytes flipped / replaced (headers intact: the bytes reach the dissectors)
          if (!f || payload === 0) break;
          for (let k = 1 + this.int(8); k > 0; k--) {
            const at = f.payloadOffset + this.int(payload);
            rec.data[at] = this.rnd() < 0.5 ? rec.data[at] ^ (1 << this.int(8)) : this.int(256);
          }
          how.push('payload-bytes');
          break;
        }
        case 1: { // binary fields in the payload (HTTP/2 frame lengths, DNS counts, RESP...) get interesting values
          if (!f || payload < 2) break;
          const at = f.payloadOffset + this.int(payload - 1);
          rec.data.writeUInt16BE(this.pick(INTERESTING16), at);
          if (payload >= 4 && this.rnd() < 0.5) rec.data.writeUInt32BE(this.pick(INTERESTING32) >>> 0, f.payloadOffset + this.int(payload - 3));
          how.push('payload-fields');
          break;
        }
        case 2: { // digits of a text protocol (Content-Length, chunk sizes, RESP lengths) become absurd
          if (!f || payload === 0) break;
          const text = rec.data.subarray(f.payloadOffset).toString('latin1');
          const runs = [...text.matchAll(/[0-9a-fA-F]+/g)].filter((m) => /\d/.test(m[0]));
          if (runs.length === 0) break;
          const m = this.pick(runs);
          const repl = Buffer.from(this.pick(BIG_NUMBERS), 'latin1');
          const at = f.payloadOffset + m.index!;
          rec.data = fixLengths(Buffer.concat([rec.data.subarray(0, at), repl, rec.data.subarray(at + m[0].length)]));
          rec.origLen = rec.data.length;
          how.push('digits');
          break;
        }
        case 3: { // payload replaced by random bytes or by another frame's payload (another protocol's bytes)
          if (!f) break;
          const other = recs[this.int(recs.length)];
          const of = flowOf(other.data);
          const body = this.rnd() < 0.5 && of ? other.data.subarray(of.payloadOffset) : this.bytes(this.int(1500));
          rec.data = fixLengths(Buffer.concat([rec.data.subarray(0, f.payloadOffset), body]));
          rec.origLen = rec.data.length;
          how.push('payload-swap');
          break;
        }
        case 4: { // payload bytes inserted or cut (the stream shifts; IP/UDP lengths follow)
          if (!f || payload === 0) break;
          const at = f.payloadOffset + this.int(payload + 1);
          rec.data = this.rnd() < 0.5
            ? Buffer.concat([rec.data.subarray(0, at), this.bytes(1 + this.int(32)), rec.data.subarray(at)])
            : Buffer.concat([rec.data.subarray(0, at), rec.data.subarray(Math.min(rec.data.length, at + 1 + this.int(32)))]);
          rec.data = fixLengths(rec.data);
          rec.origLen = rec.data.length;
          how.push('payload-len');
          break;
        }
        case 5: { // a header byte (link, IP, TCP/UDP: lengths, flags, fragment fields, ports, seq/ack)
          const end = f ? f.payloadOffset : Math.min(rec.data.length, 60);
          if (end === 0) break;
          const at = this.int(end);
          rec.data[at] = this.rnd() < 0.5 ? this.int(256) : rec.data[at] ^ (1 << this.int(8));
          how.push('header-byte');
          break;
        }
        case 6: { // TCP sequence numbers jump (holes, overlaps, wraps)
          if (!f || f.protocol !== 6) break;
          const seqAt = f.l4Offset + 4;
          const delta = this.pick([1, -1, 100, -100, 65536, 0x7fffffff, 0x80000000, this.int(0xffffffff)]);
          rec.data.writeUInt32BE((rec.data.readUInt32BE(seqAt) + delta) >>> 0, seqAt);
          how.push('seq');
          break;
        }
        case 7: // frames lost
          recs.splice(i, 1 + this.int(3));
          how.push('drop');
          break;
        case 8: // frames duplicated (retransmissions)
          recs.splice(i, 0, ...recs.slice(i, i + 1 + this.int(3)).map((x) => ({ ...x, data: Buffer.from(x.data) })));
          how.push('dup');
          break;
        case 9: { // frames reordered
          const j = Math.min(recs.length - 1, i + 1 + this.int(5));
          [recs[i], recs[j]] = [recs[j], recs[i]];
          how.push('reorder');
          break;
        }
        case 10: { // a frame cut short by the snap length (origLen keeps the wire length), or its timestamp thrown around
          if (this.rnd() < 0.5) {
            const keep = this.int(rec.data.length + 1);
            rec.origLen = rec.data.length;
            rec.data = rec.data.subarray(0, keep);
            how.push('snap');
          } else {
            rec.sec = this.pick([0, rec.sec - 3600, rec.sec + 86400 * 365, 0xffffffff, rec.sec - 1]) >>> 0;
            how.push('time');
          }
          break;
        }
        default: { // an IPv4 datagram split into two fragments, maybe out of order, maybe overlapping
          if (!f || rec.data.length - f.l4Offset < 16) break;
          const frags = fragment(rec.data, f.ipOffset, f.l4Offset, 8 * (1 + this.int((rec.data.length - f.l4Offset) / 8 - 1)), this.rnd() < 0.2);
          if (!frags) break;
          if (this.rnd() < 0.3) frags.reverse();
          recs.splice(i, 1, ...frags.map((d) => ({ ...rec, data: d, origLen: d.length })));
          how.push('fragment');
        }
      }
    }
    if (this.rnd() < 0.05) recs = recs.reverse();
    return { recs, how: `packets:${how.join('+')}` };
  }
}

/** IPv4 total length and UDP length follow a payload whose size changed (so the decoder takes the bytes, not MALFORMED). */
function fixLengths(frame: Buffer): Buffer {
  const f = flowOf(frame);
  if (!f) return frame;
  frame.writeUInt16BE(Math.min(0xffff, frame.length - f.ipOffset), f.ipOffset + 2);
  if (f.protocol === 17) frame.writeUInt16BE(Math.min(0xffff, frame.length - f.l4Offset), f.l4Offset + 4);
  return frame;
}

/** Two IPv4 fragments of the frame's datagram, split `at` bytes (a multiple of 8) into its payload; `overlap` makes the second start 8 bytes early. */
function fragment(frame: Buffer, ip: number, l4: number, at: number, overlap: boolean): Buffer[] | null {
  const payloadLen = frame.length - l4;
  if (at <= 0 || at >= payloadLen) return null;
  const head = frame.subarray(0, l4);
  const p = frame.subarray(l4);
  const secondStart = overlap && at >= 8 ? at - 8 : at;
  const a = Buffer.concat([head, p.subarray(0, at)]);
  const b = Buffer.concat([head, p.subarray(secondStart)]);
  a.writeUInt16BE(a.length - ip, ip + 2);
  a.writeUInt16BE(0x2000, ip + 6); // MF, offset 0
  b.writeUInt16BE(b.length - ip, ip + 2);
  b.writeUInt16BE(secondStart / 8, ip + 6);
  return [a, b];
}

export function recordOffsets(recs: readonly Rec[]): number[] {
  const out: number[] = [];
  let o = 24;
  for (const r of recs) {
    out.push(o);
    o += 16 + r.data.length;
  }
  return out.length > 0 ? out : [24];
}

/** Parsers of the stream dissectors whose counters are per parser (Redis, DNS over TCP), created during the current run. */
const parsers: StreamParser[] = [];
function watch(d: StreamDissector): void {
  const create = d.create.bind(d);
  (d as { create: StreamDissector['create'] }).create = (ctx) => {
    const p = create(ctx);
    parsers.push(p);
    return p;
  };
}
watch(redisDissector);
watch(dnsStreamDissector);

function internalErrors(): { http1: number; http2: number; h2emit: number; dnsUdp: number } {
  return { http1: http1Stats().internalErrors, http2: http2Stats().internalErrors, h2emit: http2Stats().emitErrors, dnsUdp: dnsDatagramDissector.stats.internalErrors };
}

/** Heap in use after a full garbage collection, MiB. */
function retainedMb(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1048576;
}

async function main(): Promise<void> {
  const input = workerData as FuzzInput;
  const seeds = input.seeds.map((s) => {
    const recs: Rec[] = s.records.map((r) => ({ sec: r.sec, frac: r.frac, origLen: r.origLen, data: Buffer.from(r.data) }));
    return { name: s.name, linkType: s.linkType, recs, bytes: writePcap(s.linkType, recs), offsets: recordOffsets(recs) };
  });
  const result: FuzzResult = {
    iterations: 0, fileLevel: 0, packetLevel: 0, resolved: 0, rejected: {}, items: {}, itemsWithError: 0, frames: 0, maxRunMs: 0, slowest: '',
    failures: [], heapUsedMb: 0, peakHeapTotalMb: 0, peakExternalMb: 0, retainedBeforeMb: 0, retainedAfterMb: 0, parsersChecked: 0,
  };
  const fail = (iteration: number, seed: number, inputName: string, what: string, bytes?: Buffer) => {
    if (result.failures.length < 20) result.failures.push({ iteration, seed, input: inputName, what, ...(bytes ? { bytes } : {}) });
  };

  /** One capture through the reader and a fresh pipeline; returns what went wrong ('' if nothing). */
  async function runOne(bytes: Buffer, chunk: number, count: boolean, pairTimeoutMs = 30_000): Promise<string> {
    const problems: string[] = [];
    parsers.length = 0;
    const before = internalErrors();
    const pipeline = new CapturePipeline({
      node: { name: 'fuzz', ip: '' },
      worker: 'fuzz',
      // Short timeouts so the pair, idle and fragment timers run inside the small captures too.
      dissectorOptions: { pairTimeoutMs },
      tcpIdleTimeoutMs: 500,
      udpIdleTimeoutMs: 500,
      maxFlows: 64,
      maxBufferedBytesPerDirection: 64 * 1024,
      onItem: (it) => {
        let json: string;
        try {
          json = JSON.stringify(it.item);
        } catch (err) {
          problems.push(`item does not serialise: ${(err as Error).message}`);
          return;
        }
        const o = it.item as Record<string, any>;
        if (typeof o.id !== 'string' || !/^[0-9a-f]{6,}$/.test(String(o.stream)) || typeof o.src?.port !== 'string' || typeof o.dst?.port !== 'string'
          || !Number.isFinite(o.timestamp) || !(o.elapsedTime >= 0) || typeof o.startTime !== 'string') {
          problems.push(`item shape: ${json.slice(0, 200)}`);
        }
        if (json.length > 2 * 1024 * 1024) problems.push(`item of ${json.length} bytes`);
        if (count) {
          const k = o.protocol?.name === 'http' ? `http${o.protocol.version === '2.0' ? '2' : '1'}` : String(o.protocol?.name);
          result.items[k] = (result.items[k] ?? 0) + 1;
          if (o.error !== null) result.itemsWithError++;
        }
      },
      onParserError: (err, _conn, dissector) => problems.push(`${dissector} threw at the parser boundary: ${String((err as Error)?.stack ?? err).slice(0, 600)}`),
    });
    let frames = 0;
    try {
      await readCaptureFile(Readable.from([bytes]), (f) => {
        frames++;
        pipeline.onFrame(f);
      }, { chunkBytes: chunk });
      if (count) result.resolved++;
    } catch (err) {
      if (err instanceof CaptureFileError) {
        if (count) result.rejected[err.kind] = (result.rejected[err.kind] ?? 0) + 1;
        if (err.framesDelivered !== frames) problems.push(`CaptureFileError says ${err.framesDelivered} frames delivered, ${frames} were`);
      } else problems.push(`not a CaptureFileError: ${String((err as Error)?.stack ?? err).slice(0, 600)}`);
    }
    try {
      pipeline.end();
    } catch (err) {
      problems.push(`pipeline.end() threw: ${String((err as Error)?.stack ?? err).slice(0, 600)}`);
    }
    if (count) result.frames += frames;
    const st = pipeline.stats();
    for (const k of ['reassembly_parserErrors', 'reassembly_probeErrors', 'reassembly_datagramErrors', 'reassembly_datagramProbeErrors']) {
      if (st[k] !== 0) problems.push(`${k} = ${st[k]}`);
    }
    if (st.reassembly_tcpBufferedBytes !== 0 || st.reassembly_flowsActive !== 0) problems.push(`state left after end(): buffered ${st.reassembly_tcpBufferedBytes}, flows ${st.reassembly_flowsActive}`);
    const after = internalErrors();
    if (after.http1 !== before.http1) problems.push(`http1 internalErrors +${after.http1 - before.http1}: ${http1LastInternalError().slice(0, 600)}`);
    if (after.http2 !== before.http2) problems.push(`http2 internalErrors +${after.http2 - before.http2}: ${http2LastInternalError().slice(0, 600)}`);
    if (after.h2emit !== before.h2emit) problems.push(`http2 emitErrors +${after.h2emit - before.h2emit}`);
    if (after.dnsUdp !== before.dnsUdp) problems.push(`dns (UDP) internalErrors +${after.dnsUdp - before.dnsUdp}`);
    if (count) result.parsersChecked += parsers.length;
    for (const p of parsers) {
      const n = (p as unknown as { stats?: { internalErrors?: number } }).stats?.internalErrors ?? 0;
      if (n !== 0) problems.push(`${p.constructor.name} internalErrors ${n}`);
    }
    return problems.join('; ');
  }

  // Warm-up: every seed unmutated decodes cleanly (else the fuzzing would start from broken inputs).
  for (const s of seeds) {
    const p = await runOne(s.bytes, 1 << 20, false);
    if (p) fail(-1, 0, s.name, `unmutated seed: ${p}`, s.bytes);
  }
  result.retainedBeforeMb = retainedMb();
  parentPort!.postMessage({ type: 'ready' } satisfies FuzzMessage);

  const t0 = performance.now();
  for (let i = 0; i < input.maxIterations && performance.now() - t0 < input.budgetMs; i++) {
    const seed = (input.baseSeed + i * 0x9e3779b1) >>> 0;
    const m = new Mutator(prng(seed));
    const s = seeds[i % seeds.length];
    let bytes: Buffer;
    let how: string;
    if (m.rnd() < 0.45) {
      ({ bytes, how } = m.file(s.bytes, s.offsets));
      result.fileLevel++;
    } else {
      const out = m.packets(s.recs);
      bytes = writePcap(s.linkType, out.recs);
      how = out.how;
      result.packetLevel++;
    }
    const name = `${s.name} ${how}`;
    parentPort!.postMessage({ type: 'start', iteration: i, seed, input: name } satisfies FuzzMessage);
    const chunk = m.rnd() < 0.2 ? 1 + m.int(512) : 1 << 16;
    const r0 = performance.now();
    const problems = await runOne(bytes, chunk, true, m.rnd() < 0.3 ? 20 : 30_000);
    const ms = performance.now() - r0;
    result.iterations++;
    if (ms > result.maxRunMs) {
      result.maxRunMs = ms;
      result.slowest = `${name} (seed 0x${seed.toString(16)})`;
    }
    if (ms > input.perRunBoundMs) fail(i, seed, name, `took ${ms.toFixed(0)} ms`, bytes);
    if (problems) fail(i, seed, name, problems, bytes);
    if (i % 50 === 0) {
      const mu = process.memoryUsage();
      result.peakHeapTotalMb = Math.max(result.peakHeapTotalMb, mu.heapTotal / 1048576);
      result.peakExternalMb = Math.max(result.peakExternalMb, mu.external / 1048576);
    }
  }
  result.heapUsedMb = process.memoryUsage().heapUsed / 1048576;
  result.retainedAfterMb = retainedMb();
  parentPort!.postMessage({ type: 'done', result } satisfies FuzzMessage);
}

// Imported by a test or a script that only wants the mutator: no loop.
if (parentPort !== null && workerData !== null) await main();
