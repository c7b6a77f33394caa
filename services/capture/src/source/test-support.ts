/**
 * Test support: builds pcap and pcapng files byte by byte (independently of
 * the reader and writer), a seeded PRNG, and an exact check that a double is
 * the nearest one to a rational time.
 */
import { Readable } from 'node:stream';
import { rng } from '@wirescript/testing';

export type ByteOrder = 'le' | 'be';

/** What a built file should yield, frame by frame, plus where its blocks end. */
export interface ExpectedFrame {
  /** Exact time as a rational: tsNum / tsDen ms. */
  tsNum: bigint;
  tsDen: bigint;
  captureLength: number;
  length: number;
  linkType: number;
  interfaceId: number;
  data: Buffer;
}

export interface BuiltFile {
  bytes: Buffer;
  frames: ExpectedFrame[];
  /** File offset where each frame's record/block ends (same order as frames). */
  frameEnds: number[];
  /** Offsets at which the file may end cleanly (after the file header / SHB, and after every record/block). */
  cleanEnds: Set<number>;
}

export interface PcapRecordSpec {
  sec: number;
  /** Microseconds, or nanoseconds in a nanosecond file. */
  frac: number;
  data: Uint8Array;
  /** Defaults to data.length. */
  origLen?: number;
  /** Overrides the captured length field (to build corrupt files). */
  caplenField?: number;
}

export interface PcapSpec {
  byteOrder?: ByteOrder;
  nanos?: boolean;
  /** The whole 32-bit link-type field (FCS bits included). */
  linkTypeField?: number;
  snaplen?: number;
  versionMajor?: number;
  versionMinor?: number;
  records: PcapRecordSpec[];
}

function u16(le: boolean, v: number): Buffer {
  const b = Buffer.alloc(2);
  if (le) b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
}

function u32(le: boolean, v: number): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(v >>> 0);
  else b.writeUInt32BE(v >>> 0);
  return b;
}

function i64(le: boolean, v: bigint): Buffer {
  const b = Buffer.alloc(8);
  if (le) b.writeBigInt64LE(v);
  else b.writeBigInt64BE(v);
  return b;
}

function pad4(b: Buffer): Buffer {
  const extra = (4 - (b.length % 4)) % 4;
  return extra === 0 ? b : Buffer.concat([b, Buffer.alloc(extra)]);
}

export function buildPcap(spec: PcapSpec): BuiltFile {
  const le = (spec.byteOrder ?? 'le') === 'le';
  const nanos = spec.nanos === true;
  const linkTypeField = spec.linkTypeField ?? 1;
  const snaplen = spec.snaplen ?? 65535;
  const parts: Buffer[] = [
    u32(le, nanos ? 0xa1b23c4d : 0xa1b2c3d4),
    u16(le, spec.versionMajor ?? 2),
    u16(le, spec.versionMinor ?? 4),
    u32(le, 0),
    u32(le, 0),
    u32(le, snaplen),
    u32(le, linkTypeField),
  ];
  let off = 24;
  const frames: ExpectedFrame[] = [];
  const frameEnds: number[] = [];
  const cleanEnds = new Set<number>([24]);
  const units = nanos ? 1_000_000_000n : 1_000_000n;
  for (const r of spec.records) {
    const data = Buffer.from(r.data);
    const origLen = r.origLen ?? data.length;
    parts.push(u32(le, r.sec), u32(le, r.frac), u32(le, r.caplenField ?? data.length), u32(le, origLen), data);
    off += 16 + data.length;
    frames.push({
      tsNum: (BigInt(r.sec) * units + BigInt(r.frac)) * 1000n,
      tsDen: units,
      captureLength: data.length,
      length: Math.max(origLen, data.length),
      linkType: linkTypeField & 0xffff,
      interfaceId: 0,
      data,
    });
    frameEnds.push(off);
    cleanEnds.add(off);
  }
  return { bytes: Buffer.concat(parts), frames, frameEnds, cleanEnds };
}

export interface PcapngOption {
  code: number;
  value: Buffer;
}

export interface IdbSpec {
  linkType: number;
  snaplen?: number;
  /** if_tsresol byte (6 = µs, 9 = ns, 0x80|n = 2^-n). */
  tsresol?: number;
  /** if_tsoffset, seconds. */
  tsoffset?: bigint;
  name?: string;
  extraOptions?: PcapngOption[];
}

interface IfaceInfo {
  linkType: number;
  snaplen: number;
  units: bigint;
  offset: bigint;
}

/**
 * Builds a pcapng file block by block. Timestamps of packet blocks are raw
 * 64-bit counts in the interface's units; the expected frames carry the
 * exact time those counts mean.
 */
export class PcapngBuilder {
  private readonly parts: Buffer[] = [];
  private off = 0;
  private le = true;
  private ifaces: IfaceInfo[] = [];
  private lastTs: { num: bigint; den: bigint } = { num: 0n, den: 1n };
  readonly frames: ExpectedFrame[] = [];
  readonly frameEnds: number[] = [];
  readonly cleanEnds = new Set<number>();

  /** A raw block with the given body (type and both lengths added). */
  block(type: number, body: Buffer, opts: { trailerLength?: number; lengthField?: number } = {}): this {
    const b = pad4(body);
    const len = 12 + b.length;
    const block = Buffer.concat([u32(this.le, type), u32(this.le, opts.lengthField ?? len), b, u32(this.le, opts.trailerLength ?? len)]);
    this.parts.push(block);
    this.off += block.length;
    return this;
  }

  shb(byteOrder: ByteOrder, opts: { major?: number; minor?: number; options?: PcapngOption[] } = {}): this {
    this.le = byteOrder === 'le';
    this.ifaces = [];
    const body = Buffer.concat([
      u32(this.le, 0x1a2b3c4d),
      u16(this.le, opts.major ?? 1),
      u16(this.le, opts.minor ?? 0),
      i64(this.le, -1n),
      this.options(opts.options ?? [{ code: 4, value: Buffer.from('wirescript test builder') }]),
    ]);
    this.block(0x0a0d0d0a, body);
    this.cleanEnds.add(this.off);
    return this;
  }

  idb(spec: IdbSpec): this {
    const opts: PcapngOption[] = [];
    if (spec.name !== undefined) opts.push({ code: 2, value: Buffer.from(spec.name) });
    if (spec.tsresol !== undefined) opts.push({ code: 9, value: Buffer.from([spec.tsresol]) });
    if (spec.tsoffset !== undefined) opts.push({ code: 14, value: i64(this.le, spec.tsoffset) });
    opts.push(...(spec.extraOptions ?? []));
    const snaplen = spec.snaplen ?? 0;
    const body = Buffer.concat([u16(this.le, spec.linkType), u16(this.le, 0), u32(this.le, snaplen), this.options(opts)]);
    this.block(1, body);
    this.cleanEnds.add(this.off);
    const r = spec.tsresol ?? 6;
    const units = r & 0x80 ? 1n << BigInt(r & 0x7f) : 10n ** BigInt(r);
    this.ifaces.push({ linkType: spec.linkType, snaplen, units, offset: spec.tsoffset ?? 0n });
    return this;
  }

  epb(iface: number, ts: bigint, data: Uint8Array, opts: { origLen?: number; options?: PcapngOption[] } = {}): this {
    const d = Buffer.from(data);
    const origLen = opts.origLen ?? d.length;
    const body = Buffer.concat([
      u32(this.le, iface),
      u32(this.le, Number(ts >> 32n)),
      u32(this.le, Number(ts & 0xffffffffn)),
      u32(this.le, d.length),
      u32(this.le, origLen),
      pad4(d),
      opts.options === undefined ? Buffer.alloc(0) : this.options(opts.options),
    ]);
    this.block(6, body);
    this.packet(iface, ts, d, origLen);
    return this;
  }

  /** Obsolete Packet Block (type 2). */
  opb(iface: number, ts: bigint, data: Uint8Array, opts: { origLen?: number; drops?: number } = {}): this {
    const d = Buffer.from(data);
    const origLen = opts.origLen ?? d.length;
    const body = Buffer.concat([
      u16(this.le, iface),
      u16(this.le, opts.drops ?? 0),
      u32(this.le, Number(ts >> 32n)),
      u32(this.le, Number(ts & 0xffffffffn)),
      u32(this.le, d.length),
      u32(this.le, origLen),
      pad4(d),
    ]);
    this.block(2, body);
    this.packet(iface, ts, d, origLen);
    return this;
  }

  /** Simple Packet Block: interface 0; data is what is stored (the reader caps it by origLen and snaplen). */
  spb(data: Uint8Array, origLen?: number): this {
    const d = pad4(Buffer.from(data));
    const o = origLen ?? data.length;
    this.block(3, Buffer.concat([u32(this.le, o), d]));
    const iface = this.ifaces[0];
    // The reader can only tell the stored length by the block length, padding included.
    let caplen = Math.min(o, d.length);
    if (iface.snaplen > 0) caplen = Math.min(caplen, iface.snaplen);
    // No timestamp in an SPB: the reader repeats the previous frame's.
    this.frames.push({
      tsNum: this.lastTs.num,
      tsDen: this.lastTs.den,
      captureLength: caplen,
      length: Math.max(o, caplen),
      linkType: iface.linkType,
      interfaceId: 0,
      data: d.subarray(0, caplen),
    });
    this.frameEnds.push(this.off);
    this.cleanEnds.add(this.off);
    return this;
  }

  /** A block of a type the reader does not know (or does not use: NRB 4, ISB 5, custom...). */
  other(type: number, body: Buffer): this {
    this.block(type, body);
    this.cleanEnds.add(this.off);
    return this;
  }

  build(): BuiltFile {
    return { bytes: Buffer.concat(this.parts), frames: [...this.frames], frameEnds: [...this.frameEnds], cleanEnds: new Set(this.cleanEnds) };
  }

  options(opts: PcapngOption[]): Buffer {
    if (opts.length === 0) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    for (const o of opts) parts.push(u16(this.le, o.code), u16(this.le, o.value.length), pad4(o.value));
    parts.push(u16(this.le, 0), u16(this.le, 0));
    return Buffer.concat(parts);
  }

  private packet(iface: number, ts: bigint, d: Buffer, origLen: number): void {
    // An undeclared interface (a corrupt file on purpose) means no timestamp to expect.
    const info = this.ifaces[iface] ?? { linkType: -1, snaplen: 0, units: 1n, offset: 0n };
    // ms = (ts / units + offset) * 1000
    const num = (ts + info.offset * info.units) * 1000n;
    this.lastTs = { num, den: info.units };
    this.frames.push({
      tsNum: num,
      tsDen: info.units,
      captureLength: d.length,
      length: Math.max(origLen, d.length),
      linkType: info.linkType,
      interfaceId: iface,
      data: d,
    });
    this.frameEnds.push(this.off);
    this.cleanEnds.add(this.off);
  }
}

/** Splits bytes into a stream of chunks of the given size (to exercise chunk boundaries). */
export function chunkedStream(bytes: Buffer, chunk: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
  return Readable.from(chunks, { objectMode: false });
}

/** Deterministic PRNG (mulberry32, shared with the fixtures) so a failing case can be replayed from its seed. */
export const prng = rng;

/** x as an exact rational (num / den, den a power of two). */
function doubleToRational(x: number): [bigint, bigint] {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  const bits = dv.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const exp = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  const mant = exp === 0 ? frac : frac | (1n << 52n);
  const e = (exp === 0 ? 1 : exp) - 1075;
  return e >= 0 ? [sign * mant * (1n << BigInt(e)), 1n] : [sign * mant, 1n << BigInt(-e)];
}

function adjacent(x: number, dir: 1 | -1): number {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  // Positive doubles only (timestamps): the next one up/down is the next bit pattern.
  dv.setBigUint64(0, dv.getBigUint64(0) + BigInt(dir));
  return dv.getFloat64(0);
}

/** |x - num/den| as a rational compared across: returns |x*den - num| scaled to a common denominator with xDen. */
function distance(x: number, num: bigint, den: bigint): [bigint, bigint] {
  const [xn, xd] = doubleToRational(x);
  const n = xn * den - num * xd;
  return [n < 0n ? -n : n, xd * den];
}

function lessOrEqual(a: [bigint, bigint], b: [bigint, bigint]): boolean {
  return a[0] * b[1] <= b[0] * a[1];
}

/** Whether x is a double nearest to num/den (no other double is strictly closer). */
export function isNearestDouble(x: number, num: bigint, den: bigint): boolean {
  if (!(x > 0)) return num === 0n && x === 0;
  const d = distance(x, num, den);
  return lessOrEqual(d, distance(adjacent(x, 1), num, den)) && lessOrEqual(d, distance(adjacent(x, -1), num, den));
}
