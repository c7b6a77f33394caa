/**
 * Streaming reader for pcap and pcapng capture files.
 *
 * The file is read in large chunks into one reused buffer and each record
 * is handed to `onFrame` as a reused Frame whose `data` is a view into that
 * buffer (valid until onFrame returns or its promise settles). The buffer
 * grows only as far as data actually arrives, so a bogus length in a
 * corrupt file costs at most the file's own size, never the claimed size.
 *
 * Bad input rejects with CaptureFileError after every frame decoded before
 * the damage was delivered.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Frame } from '../types.ts';
import {
  div64,
  div64Result,
  MAX_RECORD_BYTES,
  PCAP_HEADER_BYTES,
  PCAP_MAGIC_KUZNETZOV_BE,
  PCAP_MAGIC_KUZNETZOV_LE,
  PCAP_MAGIC_NS_BE,
  PCAP_MAGIC_NS_LE,
  PCAP_MAGIC_US_BE,
  PCAP_MAGIC_US_LE,
  PCAP_RECORD_HEADER_BYTES,
  PCAPNG_BYTE_ORDER_MAGIC,
  PCAPNG_SHB,
  tsToMs,
} from './pcap-format.ts';

export { MAX_RECORD_BYTES } from './pcap-format.ts';

export type CaptureFormat = 'pcap' | 'pcapng';

/**
 * not-capture: neither pcap nor pcapng; truncated: the file ends inside a
 * header, record or block; corrupt: a field that cannot be right;
 * unsupported: a valid but unsupported variant (version); io: the file or
 * stream could not be read.
 */
export type CaptureFileErrorKind = 'not-capture' | 'truncated' | 'corrupt' | 'unsupported' | 'io';

export class CaptureFileError extends Error {
  override readonly name = 'CaptureFileError';
  readonly kind: CaptureFileErrorKind;
  /** Byte offset in the file of the header, record or block at fault. */
  readonly offset: number;
  /** Frames handed to onFrame (and completed) before the error. */
  readonly framesDelivered: number;

  constructor(kind: CaptureFileErrorKind, message: string, offset: number, framesDelivered: number, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.offset = offset;
    this.framesDelivered = framesDelivered;
  }
}

/** One interface a capture declares (the single implicit one for pcap). */
export interface CaptureInterface {
  /** pcapng section index (0 for pcap). */
  section: number;
  /** Interface index inside its section (what Frame.interfaceId says). */
  id: number;
  linkType: number;
  /** 0 when the file says "no limit". */
  snaplen: number;
  /** Timestamp units per second (1e6 for µs, 1e9 for ns, 2^n for power-of-2 resolutions). */
  tsUnitsPerSecond: number;
  /** pcapng if_tsoffset, seconds added to every timestamp. */
  tsOffsetSeconds: number;
  /** Frame check sequence bytes at the end of each frame, when the file says. */
  fcsBytes?: number;
  /** pcapng if_name. */
  name?: string;
}

export interface CaptureFileSummary {
  format: CaptureFormat;
  frames: number;
  /** Captured bytes delivered (sum of captureLength). */
  bytes: number;
  /** Bytes of the file consumed. */
  fileBytes: number;
  /** Distinct link types of the declared interfaces, in order of declaration. */
  linkTypes: number[];
  /** Timestamp of the first / last frame delivered (undefined without frames). */
  firstTsMs: number | undefined;
  lastTsMs: number | undefined;
  /** Frames cut short by the snap length (captureLength < length). */
  truncatedFrames: number;
  /** pcapng sections (1 for pcap). */
  sections: number;
  /** Declared interfaces; only the first MAX_LISTED_INTERFACES are listed, interfaceCount counts all. */
  interfaces: CaptureInterface[];
  interfaceCount: number;
}

export interface ReadCaptureFileOptions {
  /** 'max' (default) never waits; 'recorded' paces frames by their timestamps; a number multiplies the recorded speed. */
  speed?: 'max' | 'recorded' | number;
  /** Aborting rejects with the signal's reason; no frame is delivered after it. */
  signal?: AbortSignal;
  /** Read size, bytes (default 1 MiB). */
  chunkBytes?: number;
  /** After each read: bytes read so far and the file size when known (undefined for streams and pipes). */
  onProgress?(bytesRead: number, totalBytes: number | undefined): void;
}

/**
 * A path, a file: URL, or a byte stream (a Readable without an encoding, or
 * any async iterable of Uint8Array). A stream is consumed; if reading stops
 * early (error, abort) the iterator is returned, which destroys a Readable.
 */
export type CaptureInput = string | URL | AsyncIterable<Uint8Array>;

export const MAX_LISTED_INTERFACES = 1024;
/** More interfaces than this in one section is a corrupt file, not a capture (keeps memory bounded). */
export const MAX_INTERFACES_PER_SECTION = 65_536;
const DEFAULT_CHUNK_BYTES = 1 << 20;
const PCAPNG_IDB = 1;
const PCAPNG_OPB = 2;
const PCAPNG_SPB = 3;
const PCAPNG_EPB = 6;
/** Above this, timestamp units need BigInt arithmetic (see div64). */
const FAST_UNITS_LIMIT = 2 ** 36;

/**
 * Reads a pcap or pcapng capture, calling onFrame for every packet record in
 * file order, and resolves with a summary. onFrame's promise, if it returns
 * one, is awaited before the next frame (back-pressure); an error thrown by
 * onFrame rejects the read as is.
 */
export async function readCaptureFile(
  input: CaptureInput,
  onFrame: (frame: Frame) => void | Promise<void>,
  opts: ReadCaptureFileOptions = {},
): Promise<CaptureFileSummary> {
  const speed = speedFactor(opts.speed);
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_RECORD_BYTES) {
    throw new RangeError(`chunkBytes must be an integer in 1..${MAX_RECORD_BYTES}, got ${chunkBytes}`);
  }
  opts.signal?.throwIfAborted();
  const source = await openSource(input);
  const reader = new CaptureReader(source, onFrame, speed, chunkBytes, opts);
  let done = false;
  try {
    const summary = await reader.run();
    done = true;
    return summary;
  } finally {
    await source.close(!done);
  }
}

function speedFactor(speed: ReadCaptureFileOptions['speed']): number {
  if (speed === undefined || speed === 'max') return 0;
  if (speed === 'recorded') return 1;
  if (typeof speed === 'number' && speed > 0 && !Number.isNaN(speed)) return speed === Infinity ? 0 : speed;
  throw new RangeError(`speed must be 'max', 'recorded' or a positive number, got ${String(speed)}`);
}

interface ByteSource {
  /** Prefix for error messages ("file.pcap: "), empty for streams. */
  readonly label: string;
  /** A read may wait for ever (a stream), so an abort must not wait for it. */
  readonly mayStall: boolean;
  readonly total: number | undefined;
  /** Reads up to len bytes into buf at `at`; 0 at the end. */
  read(buf: Buffer, at: number, len: number): Promise<number>;
  close(early: boolean): Promise<void>;
}

async function openSource(input: CaptureInput): Promise<ByteSource> {
  if (typeof input === 'string' || input instanceof URL) {
    const path = typeof input === 'string' ? input : fileURLToPath(input);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw new CaptureFileError('io', `${path}: cannot open at offset 0: ${(err as Error).message}`, 0, 0, { cause: err });
    }
    let total: number | undefined;
    try {
      const st = await fh.stat();
      total = st.isFile() ? st.size : undefined;
    } catch {
      total = undefined;
    }
    return new FileSource(fh, path, total);
  }
  if (input !== null && typeof input === 'object' && Symbol.asyncIterator in input) {
    return new StreamSource(input);
  }
  throw new TypeError('readCaptureFile: input must be a path, a file URL or an async iterable of bytes');
}

class FileSource implements ByteSource {
  readonly label: string;
  // A FileHandle cannot be closed under a pending read, so file reads are not raced with abort.
  readonly mayStall = false;
  readonly total: number | undefined;
  private readonly fh: FileHandle;

  constructor(fh: FileHandle, path: string, total: number | undefined) {
    this.fh = fh;
    this.label = `${path}: `;
    this.total = total;
  }

  async read(buf: Buffer, at: number, len: number): Promise<number> {
    // Sequential reads (position null), so pipes and /dev/stdin work as well as files.
    const { bytesRead } = await this.fh.read(buf, at, len, null);
    return bytesRead;
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

class StreamSource implements ByteSource {
  readonly label = '';
  readonly mayStall = true;
  readonly total = undefined;
  private readonly input: AsyncIterable<unknown>;
  private readonly it: AsyncIterator<unknown>;
  private chunk: Uint8Array | null = null;
  private chunkOffset = 0;
  private ended = false;

  constructor(input: AsyncIterable<unknown>) {
    this.input = input;
    this.it = input[Symbol.asyncIterator]();
  }

  async read(buf: Buffer, at: number, len: number): Promise<number> {
    while (this.chunk === null || this.chunkOffset >= this.chunk.length) {
      if (this.ended) return 0;
      const r = await this.it.next();
      if (r.done === true) {
        this.ended = true;
        this.chunk = null;
        return 0;
      }
      if (!(r.value instanceof Uint8Array)) {
        throw new TypeError('capture stream must yield bytes (Buffer/Uint8Array); do not set an encoding on it');
      }
      this.chunk = r.value;
      this.chunkOffset = 0;
    }
    const n = Math.min(len, this.chunk.length - this.chunkOffset);
    buf.set(this.chunk.subarray(this.chunkOffset, this.chunkOffset + n), at);
    this.chunkOffset += n;
    return n;
  }

  async close(early: boolean): Promise<void> {
    if (!early || this.ended) return;
    // Not awaited: an iterator's return() queues behind a pending next(), which on a
    // stalled stream never settles. A Readable is destroyed directly, which ends both.
    const destroy = (this.input as { destroy?: unknown }).destroy;
    if (typeof destroy === 'function') {
      destroy.call(this.input);
      return;
    }
    if (this.it.return !== undefined) Promise.resolve(this.it.return()).catch(() => undefined);
  }
}

interface InterfaceState {
  linkType: number;
  snaplen: number;
  unitsPerSec: number;
  /** Set when unitsPerSec is too large for exact double arithmetic. */
  unitsBig: bigint | null;
  offsetSec: number;
}

const EMPTY = Buffer.alloc(0);

class CaptureReader {
  private readonly src: ByteSource;
  private readonly onFrame: (frame: Frame) => void | Promise<void>;
  private readonly speed: number;
  private readonly chunkBytes: number;
  private readonly signal: AbortSignal | undefined;
  private readonly onProgress: ReadCaptureFileOptions['onProgress'];

  private buf: Buffer;
  /** Next unconsumed byte in buf. */
  private pos = 0;
  /** End of the valid data in buf. */
  private end = 0;
  /** File offset of buf[0]. */
  private base = 0;
  private eof = false;

  private readonly frame: Frame = { tsMs: 0, captureLength: 0, length: 0, linkType: 0, interfaceId: 0, data: EMPTY };
  private readonly summary: CaptureFileSummary = {
    format: 'pcap',
    frames: 0,
    bytes: 0,
    fileBytes: 0,
    linkTypes: [],
    firstTsMs: undefined,
    lastTsMs: undefined,
    truncatedFrames: 0,
    sections: 0,
    interfaces: [],
    interfaceCount: 0,
  };
  private paceWallStart = -1;
  private paceTsStart = 0;

  constructor(
    src: ByteSource,
    onFrame: (frame: Frame) => void | Promise<void>,
    speed: number,
    chunkBytes: number,
    opts: ReadCaptureFileOptions,
  ) {
    this.src = src;
    this.onFrame = onFrame;
    this.speed = speed;
    this.chunkBytes = chunkBytes;
    this.signal = opts.signal;
    this.onProgress = opts.onProgress;
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  async run(): Promise<CaptureFileSummary> {
    if (!(await this.fill(4))) {
      const have = this.end - this.pos;
      if (have === 0) throw this.error('not-capture', 0, 'not a pcap or pcapng file (empty) at offset 0');
      if (isMagicPrefix(this.buf.subarray(this.pos, this.end))) throw this.truncated(0, 'the file header', 4);
      throw this.error('not-capture', 0, 'not a pcap or pcapng file (unknown magic) at offset 0');
    }
    const magic = this.buf.readUInt32BE(this.pos);
    switch (magic) {
      case PCAP_MAGIC_US_BE:
        await this.readPcap(false, false);
        break;
      case PCAP_MAGIC_US_LE:
        await this.readPcap(true, false);
        break;
      case PCAP_MAGIC_NS_BE:
        await this.readPcap(false, true);
        break;
      case PCAP_MAGIC_NS_LE:
        await this.readPcap(true, true);
        break;
      case PCAPNG_SHB:
        this.summary.format = 'pcapng';
        await this.readPcapng();
        break;
      case PCAP_MAGIC_KUZNETZOV_BE:
      case PCAP_MAGIC_KUZNETZOV_LE:
        throw this.error('unsupported', 0, 'unsupported capture format at offset 0: Kuznetzov modified pcap');
      default:
        throw this.error('not-capture', 0, `not a pcap or pcapng file (magic 0x${hex8(magic)}) at offset 0`);
    }
    this.summary.fileBytes = this.base + this.pos;
    return this.summary;
  }

  // ---- pcap ---------------------------------------------------------------

  private async readPcap(le: boolean, nanos: boolean): Promise<void> {
    if (!(await this.fill(PCAP_HEADER_BYTES))) throw this.truncated(0, 'the pcap file header', PCAP_HEADER_BYTES);
    let b = this.buf;
    let p = this.pos;
    const major = le ? b.readUInt16LE(p + 4) : b.readUInt16BE(p + 4);
    const minor = le ? b.readUInt16LE(p + 6) : b.readUInt16BE(p + 6);
    // libpcap reads 2.0 through 2.4; anything else has a different layout.
    if (major !== 2 || minor > 4) throw this.error('unsupported', 0, `unsupported pcap version ${major}.${minor} at offset 0`);
    const snaplen = le ? b.readUInt32LE(p + 16) : b.readUInt32BE(p + 16);
    const ltField = le ? b.readUInt32LE(p + 20) : b.readUInt32BE(p + 20);
    // libpcap: link type in the low 16 bits; bit 26 says bits 28-31 hold the FCS length in 16-bit words.
    const linkType = ltField & 0xffff;
    const fcsBytes = (ltField & 0x04000000) !== 0 ? (ltField >>> 28) * 2 : undefined;
    const units = nanos ? 1e9 : 1e6;
    this.summary.sections = 1;
    this.addInterface(0, 0, linkType, snaplen, units, 0, fcsBytes, undefined);
    this.pos += PCAP_HEADER_BYTES;
    // A record longer than a sane snap length is a corrupt header: catching it here
    // stops garbage frames, since classic pcap has no other framing check.
    const limit = snaplen > 0 && snaplen <= MAX_RECORD_BYTES ? snaplen : MAX_RECORD_BYTES;
    const frame = this.frame;
    frame.linkType = linkType;
    frame.interfaceId = 0;

    for (;;) {
      if (this.end - this.pos < PCAP_RECORD_HEADER_BYTES && !(await this.fill(PCAP_RECORD_HEADER_BYTES))) {
        if (this.end === this.pos) return;
        throw this.truncated(this.base + this.pos, 'a record header', PCAP_RECORD_HEADER_BYTES);
      }
      b = this.buf;
      p = this.pos;
      const sec = le ? b.readUInt32LE(p) : b.readUInt32BE(p);
      const sub = le ? b.readUInt32LE(p + 4) : b.readUInt32BE(p + 4);
      const caplen = le ? b.readUInt32LE(p + 8) : b.readUInt32BE(p + 8);
      const origLen = le ? b.readUInt32LE(p + 12) : b.readUInt32BE(p + 12);
      if (caplen > limit) {
        const what = limit === snaplen ? `the snap length ${snaplen}` : `the maximum ${MAX_RECORD_BYTES}`;
        throw this.error('corrupt', this.base + p, `corrupt pcap record at offset ${this.base + p}: captured length ${caplen} exceeds ${what}`);
      }
      const total = PCAP_RECORD_HEADER_BYTES + caplen;
      if (this.end - this.pos < total && !(await this.fill(total))) {
        throw this.truncated(this.base + this.pos, `a ${caplen}-byte record`, total);
      }
      p = this.pos;
      frame.tsMs = tsToMs(sec, sub, units);
      frame.captureLength = caplen;
      frame.length = origLen < caplen ? caplen : origLen;
      frame.data = this.buf.subarray(p + PCAP_RECORD_HEADER_BYTES, p + total);
      const wait = this.emit();
      if (wait !== undefined) await wait;
      this.pos = p + total;
    }
  }

  // ---- pcapng -------------------------------------------------------------

  private async readPcapng(): Promise<void> {
    let le = true;
    let section = -1;
    let ifaces: InterfaceState[] = [];
    const frame = this.frame;

    for (;;) {
      if (this.end - this.pos < 12 && !(await this.fill(12))) {
        if (this.end === this.pos) return;
        throw this.truncated(this.base + this.pos, 'a block header', 12);
      }
      let b = this.buf;
      let p = this.pos;
      const start = this.base + p;
      const isShb = b.readUInt32LE(p) === PCAPNG_SHB;
      if (isShb) {
        const bom = b.readUInt32LE(p + 8);
        if (bom === PCAPNG_BYTE_ORDER_MAGIC) le = true;
        else if (b.readUInt32BE(p + 8) === PCAPNG_BYTE_ORDER_MAGIC) le = false;
        else if (start === 0) throw this.error('not-capture', 0, 'not a pcap or pcapng file (bad pcapng byte-order magic) at offset 0');
        else throw this.error('corrupt', start, `corrupt pcapng section header at offset ${start}: bad byte-order magic 0x${hex8(bom)}`);
      }
      const type = isShb ? PCAPNG_SHB : le ? b.readUInt32LE(p) : b.readUInt32BE(p);
      const blen = le ? b.readUInt32LE(p + 4) : b.readUInt32BE(p + 4);
      if (blen < 12 || blen % 4 !== 0 || blen > MAX_RECORD_BYTES) {
        throw this.error('corrupt', start, `corrupt pcapng block at offset ${start}: block length ${blen} (type 0x${hex8(type)})`);
      }
      if (this.end - this.pos < blen && !(await this.fill(blen))) {
        throw this.truncated(start, `a ${blen}-byte block (type 0x${hex8(type)})`, blen);
      }
      b = this.buf;
      p = this.pos;
      const trailer = le ? b.readUInt32LE(p + blen - 4) : b.readUInt32BE(p + blen - 4);
      if (trailer !== blen) {
        throw this.error('corrupt', start, `corrupt pcapng block at offset ${start}: trailing length ${trailer} differs from the leading ${blen}`);
      }

      switch (type) {
        case PCAPNG_SHB: {
          if (blen < 28) throw this.error('corrupt', start, `corrupt pcapng section header at offset ${start}: block length ${blen} < 28`);
          const major = le ? b.readUInt16LE(p + 12) : b.readUInt16BE(p + 12);
          const minor = le ? b.readUInt16LE(p + 14) : b.readUInt16BE(p + 14);
          if (major !== 1) throw this.error('unsupported', start, `unsupported pcapng version ${major}.${minor} at offset ${start}`);
          section++;
          this.summary.sections++;
          ifaces = [];
          break;
        }
        case PCAPNG_IDB: {
          if (blen < 20) throw this.error('corrupt', start, `corrupt pcapng interface block at offset ${start}: block length ${blen} < 20`);
          if (ifaces.length >= MAX_INTERFACES_PER_SECTION) {
            throw this.error('corrupt', start, `corrupt pcapng file at offset ${start}: more than ${MAX_INTERFACES_PER_SECTION} interfaces in one section`);
          }
          ifaces.push(this.parseIdb(b, p, blen, le, start, section, ifaces.length));
          break;
        }
        case PCAPNG_EPB:
        case PCAPNG_OPB: {
          if (blen < 32) throw this.error('corrupt', start, `corrupt pcapng packet block at offset ${start}: block length ${blen} < 32`);
          const id = type === PCAPNG_EPB ? (le ? b.readUInt32LE(p + 8) : b.readUInt32BE(p + 8)) : le ? b.readUInt16LE(p + 8) : b.readUInt16BE(p + 8);
          if (id >= ifaces.length) {
            throw this.error('corrupt', start, `corrupt pcapng packet block at offset ${start}: interface ${id} not declared (section has ${ifaces.length})`);
          }
          const hi = le ? b.readUInt32LE(p + 12) : b.readUInt32BE(p + 12);
          const lo = le ? b.readUInt32LE(p + 16) : b.readUInt32BE(p + 16);
          const caplen = le ? b.readUInt32LE(p + 20) : b.readUInt32BE(p + 20);
          const origLen = le ? b.readUInt32LE(p + 24) : b.readUInt32BE(p + 24);
          // blen is a multiple of 4, so fitting caplen also fits its padding. Unlike classic pcap,
          // caplen is not held to the interface snaplen: the block length already frames it.
          if (caplen > blen - 32) {
            throw this.error('corrupt', start, `corrupt pcapng packet block at offset ${start}: captured length ${caplen} overruns the ${blen}-byte block`);
          }
          const iface = ifaces[id];
          frame.tsMs = packetTs(hi, lo, iface);
          frame.captureLength = caplen;
          frame.length = origLen < caplen ? caplen : origLen;
          frame.linkType = iface.linkType;
          frame.interfaceId = id;
          frame.data = b.subarray(p + 28, p + 28 + caplen);
          const wait = this.emit();
          if (wait !== undefined) await wait;
          break;
        }
        case PCAPNG_SPB: {
          if (ifaces.length === 0) {
            throw this.error('corrupt', start, `corrupt pcapng file at offset ${start}: simple packet block before any interface block`);
          }
          if (blen < 16) throw this.error('corrupt', start, `corrupt pcapng simple packet block at offset ${start}: block length ${blen} < 16`);
          const iface = ifaces[0];
          const origLen = le ? b.readUInt32LE(p + 8) : b.readUInt32BE(p + 8);
          // No captured-length field: the smaller of the packet, the block's room and the snap length.
          let caplen = Math.min(origLen, blen - 16);
          if (iface.snaplen > 0 && caplen > iface.snaplen) caplen = iface.snaplen;
          // No timestamp either: keep the previous frame's so capture time never jumps back to 1970.
          frame.tsMs = this.summary.lastTsMs ?? 0;
          frame.captureLength = caplen;
          frame.length = origLen < caplen ? caplen : origLen;
          frame.linkType = iface.linkType;
          frame.interfaceId = 0;
          frame.data = b.subarray(p + 12, p + 12 + caplen);
          const wait = this.emit();
          if (wait !== undefined) await wait;
          break;
        }
        default:
          // NRB, ISB, DSB, custom and unknown blocks: skipped by their length.
          break;
      }
      this.pos = p + blen;
    }
  }

  private parseIdb(b: Buffer, p: number, blen: number, le: boolean, start: number, section: number, id: number): InterfaceState {
    const linkType = le ? b.readUInt16LE(p + 8) : b.readUInt16BE(p + 8);
    const snaplen = le ? b.readUInt32LE(p + 12) : b.readUInt32BE(p + 12);
    let unitsPerSec = 1e6;
    let unitsBig: bigint | null = null;
    let offsetSec = 0;
    let fcsBytes: number | undefined;
    let name: string | undefined;
    let seenResol = false;
    let seenOffset = false;
    const optEnd = p + blen - 4;
    let o = p + 16;
    while (o + 4 <= optEnd) {
      const code = le ? b.readUInt16LE(o) : b.readUInt16BE(o);
      const len = le ? b.readUInt16LE(o + 2) : b.readUInt16BE(o + 2);
      if (code === 0) break; // opt_endofopt
      const v = o + 4;
      if (v + len > optEnd) {
        throw this.error('corrupt', start, `corrupt pcapng interface block at offset ${start}: option ${code} (${len} bytes) overruns the block`);
      }
      if (code === 9) {
        // if_tsresol: high bit set = negative power of 2, else negative power of 10.
        if (len !== 1) throw this.error('corrupt', start, `corrupt pcapng interface block at offset ${start}: if_tsresol length ${len}, expected 1`);
        if (!seenResol) {
          seenResol = true;
          const r = b[v];
          const exp = r & 0x7f;
          const big = (r & 0x80) !== 0 ? 1n << BigInt(exp) : 10n ** BigInt(exp);
          unitsPerSec = Number(big);
          unitsBig = unitsPerSec > FAST_UNITS_LIMIT ? big : null;
        }
      } else if (code === 14) {
        if (len !== 8) throw this.error('corrupt', start, `corrupt pcapng interface block at offset ${start}: if_tsoffset length ${len}, expected 8`);
        if (!seenOffset) {
          seenOffset = true;
          offsetSec = Number(le ? b.readBigInt64LE(v) : b.readBigInt64BE(v));
        }
      } else if (code === 13 && len === 1) {
        // if_fcslen is in bits.
        fcsBytes = b[v] / 8;
      } else if (code === 2 && name === undefined) {
        name = b.toString('utf8', v, v + Math.min(len, 256)).replace(/\0+$/, '');
      }
      o = v + len + ((4 - (len % 4)) % 4);
    }
    this.addInterface(section, id, linkType, snaplen, unitsPerSec, offsetSec, fcsBytes, name);
    return { linkType, snaplen, unitsPerSec, unitsBig, offsetSec };
  }

  private addInterface(
    section: number,
    id: number,
    linkType: number,
    snaplen: number,
    tsUnitsPerSecond: number,
    tsOffsetSeconds: number,
    fcsBytes: number | undefined,
    name: string | undefined,
  ): void {
    const s = this.summary;
    s.interfaceCount++;
    if (s.interfaces.length < MAX_LISTED_INTERFACES) {
      const info: CaptureInterface = { section, id, linkType, snaplen, tsUnitsPerSecond, tsOffsetSeconds };
      if (fcsBytes !== undefined) info.fcsBytes = fcsBytes;
      if (name !== undefined) info.name = name;
      s.interfaces.push(info);
    }
    if (!s.linkTypes.includes(linkType)) s.linkTypes.push(linkType);
  }

  // ---- delivery -----------------------------------------------------------

  /** Hands this.frame to onFrame; returns a promise only when something must be awaited (no promise per frame otherwise). */
  private emit(): Promise<void> | undefined {
    if (this.speed > 0) return this.emitPaced();
    const r = this.onFrame(this.frame);
    if (r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function') {
      return (r as Promise<void>).then(() => this.delivered());
    }
    this.delivered();
    return undefined;
  }

  private async emitPaced(): Promise<void> {
    const ts = this.frame.tsMs;
    if (this.paceWallStart < 0) {
      this.paceWallStart = performance.now();
      this.paceTsStart = ts;
    } else {
      // Absolute targets, so the time onFrame takes is absorbed rather than added.
      const target = this.paceWallStart + (ts - this.paceTsStart) / this.speed;
      for (let wait = target - performance.now(); wait >= 1; wait = target - performance.now()) {
        await sleep(wait, this.signal);
      }
    }
    const r = this.onFrame(this.frame);
    if (r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function') await r;
    this.delivered();
  }

  private delivered(): void {
    const f = this.frame;
    const s = this.summary;
    s.frames++;
    s.bytes += f.captureLength;
    if (f.captureLength < f.length) s.truncatedFrames++;
    if (s.firstTsMs === undefined) s.firstTsMs = f.tsMs;
    s.lastTsMs = f.tsMs;
    const signal = this.signal;
    if (signal !== undefined && signal.aborted) throw signal.reason;
  }

  // ---- buffer -------------------------------------------------------------

  /** Makes at least n bytes available from pos; false when the input ends first. */
  private async fill(n: number): Promise<boolean> {
    while (this.end - this.pos < n) {
      if (this.eof) return false;
      this.makeRoom(n);
      let got: number;
      const signal = this.signal;
      try {
        const reading = this.src.read(this.buf, this.end, this.buf.length - this.end);
        got = await (signal !== undefined && this.src.mayStall ? abortable(reading, signal) : reading);
      } catch (err) {
        if (signal !== undefined && signal.aborted) throw signal.reason;
        const at = this.base + this.end;
        throw this.error('io', at, `${this.src.label}read failed at offset ${at}: ${(err as Error).message}`, err);
      }
      if (signal !== undefined && signal.aborted) throw signal.reason;
      if (got === 0) {
        this.eof = true;
        continue;
      }
      this.end += got;
      this.onProgress?.(this.base + this.end, this.src.total);
    }
    return true;
  }

  /** Frees space after end: compacts the unconsumed bytes to the front, grows only when they fill the buffer. */
  private makeRoom(n: number): void {
    const live = this.end - this.pos;
    const free = this.buf.length - this.end;
    if (free >= Math.min(this.chunkBytes, n - live) && free > 0) return;
    if (this.pos > 0) {
      // Give back memory a huge record made us take once the data fits a normal chunk again.
      if (this.buf.length > 4 * this.chunkBytes && live < this.chunkBytes && n <= this.chunkBytes) {
        const fresh = Buffer.allocUnsafe(this.chunkBytes);
        this.buf.copy(fresh, 0, this.pos, this.end);
        this.buf = fresh;
      } else {
        this.buf.copyWithin(0, this.pos, this.end);
      }
      this.base += this.pos;
      this.end = live;
      this.pos = 0;
    }
    if (this.end === this.buf.length) {
      // Full of unconsumed data: grow (at most doubling, never past what is asked) — only data that
      // actually arrived makes us grow, so a bogus length costs no more than the file itself.
      const grown = Buffer.allocUnsafe(Math.min(Math.max(this.buf.length * 2, this.chunkBytes), Math.max(n, this.buf.length + 1)));
      this.buf.copy(grown, 0, 0, this.end);
      this.buf = grown;
    }
  }

  // ---- errors -------------------------------------------------------------

  private error(kind: CaptureFileErrorKind, offset: number, message: string, cause?: unknown): CaptureFileError {
    const label = kind === 'io' ? '' : this.src.label;
    return new CaptureFileError(kind, label + message, offset, this.summary.frames, cause === undefined ? undefined : { cause });
  }

  private truncated(start: number, what: string, needed: number): CaptureFileError {
    const fileEnd = this.base + this.end;
    return this.error(
      'truncated',
      start,
      `truncated file: ${what} at offset ${start} needs ${needed} bytes but the file ends at byte ${fileEnd} (${fileEnd - start} available)`,
    );
  }
}

function packetTs(hi: number, lo: number, iface: InterfaceState): number {
  if (iface.unitsBig === null) {
    div64(hi, lo, iface.unitsPerSec);
    return tsToMs(div64Result.q + iface.offsetSec, div64Result.r, iface.unitsPerSec);
  }
  // Resolutions finer than 2^-36 s: rare enough that BigInt's allocation does not matter.
  const units = iface.unitsBig;
  const t = (BigInt(hi) << 32n) | BigInt(lo);
  const remMs = (t % units) * 1000n;
  return (Number(t / units) + iface.offsetSec) * 1000 + Number(remMs / units) + Number(remMs % units) / iface.unitsPerSec;
}

const MAGIC_BYTES = [
  [0xa1, 0xb2, 0xc3, 0xd4],
  [0xd4, 0xc3, 0xb2, 0xa1],
  [0xa1, 0xb2, 0x3c, 0x4d],
  [0x4d, 0x3c, 0xb2, 0xa1],
  [0x0a, 0x0d, 0x0d, 0x0a],
];

function isMagicPrefix(bytes: Buffer): boolean {
  return MAGIC_BYTES.some((m) => bytes.every((v, i) => m[i] === v));
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** Settles like `p`, or rejects with the signal's reason as soon as it aborts. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, Math.min(ms, 0x7fffffff));
    function done(): void {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort(): void {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    if (signal !== undefined) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}
