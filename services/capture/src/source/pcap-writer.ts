/**
 * Buffered classic-pcap writer (native little-endian, µs or ns timestamps).
 * Records are packed into one reused buffer and written out when it fills,
 * synchronously for a path or file descriptor, as copied chunks for a
 * Writable stream (writeFrame returns false when the stream wants a pause;
 * await drain() then).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Frame } from '../types.ts';
import { DEFAULT_SNAPLEN, MAX_RECORD_BYTES, msToSecSub, PCAP_HEADER_BYTES, PCAP_RECORD_HEADER_BYTES, secSubResult, writePcapHeader } from './pcap-format.ts';

export type PcapResolution = 'us' | 'ns';

export interface PcapWriterOptions {
  /** LINKTYPE_* of every frame written (0..65535). */
  linkType: number;
  /** Frames are cut to this many bytes (default 262144). */
  snaplen?: number;
  /** Timestamp resolution of the file (default 'us'). */
  resolution?: PcapResolution;
  /** Buffer size before a write to the target (default 1 MiB). */
  bufferBytes?: number;
  /** close() leaves a given fd open / stream un-ended (a path is always closed). */
  keepOpen?: boolean;
}

/** A path (created or truncated), an open file descriptor, or a Writable stream. */
export type PcapWriterTarget = string | number | Writable;

/** The frame fields a writer needs (a Frame fits). */
export type PcapFrame = Pick<Frame, 'tsMs' | 'length' | 'linkType' | 'data'>;

export class PcapWriterError extends Error {
  override readonly name = 'PcapWriterError';
}

const DEFAULT_BUFFER_BYTES = 1 << 20;

export class PcapWriter {
  readonly linkType: number;
  readonly snaplen: number;
  readonly resolution: PcapResolution;
  /** Frames accepted. */
  framesWritten = 0;
  /** Bytes of pcap produced so far (header and records, buffered or not): the file's size once closed. */
  bytesWritten = 0;

  private readonly units: number;
  private readonly buf: Buffer;
  private len = 0;
  private readonly fd: number;
  private readonly ownsFd: boolean;
  private readonly stream: Writable | null;
  private readonly keepOpen: boolean;
  private needDrain = false;
  private streamError: unknown = undefined;
  private closed = false;

  constructor(target: PcapWriterTarget, opts: PcapWriterOptions) {
    const snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    const bufferBytes = opts.bufferBytes ?? DEFAULT_BUFFER_BYTES;
    if (!Number.isInteger(opts.linkType) || opts.linkType < 0 || opts.linkType > 0xffff) {
      throw new RangeError(`linkType must be an integer in 0..65535, got ${opts.linkType}`);
    }
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > MAX_RECORD_BYTES) {
      throw new RangeError(`snaplen must be an integer in 1..${MAX_RECORD_BYTES}, got ${snaplen}`);
    }
    if (!Number.isInteger(bufferBytes) || bufferBytes < 64) throw new RangeError(`bufferBytes must be an integer >= 64, got ${bufferBytes}`);
    const resolution = opts.resolution ?? 'us';
    if (resolution !== 'us' && resolution !== 'ns') throw new RangeError(`resolution must be 'us' or 'ns', got ${String(resolution)}`);
    this.linkType = opts.linkType;
    this.snaplen = snaplen;
    this.resolution = resolution;
    this.units = resolution === 'ns' ? 1e9 : 1e6;
    this.keepOpen = opts.keepOpen === true;
    this.buf = Buffer.allocUnsafe(bufferBytes);

    if (typeof target === 'string') {
      try {
        this.fd = openSync(target, 'w');
      } catch (err) {
        throw new PcapWriterError(`cannot create ${target}: ${(err as Error).message}`, { cause: err });
      }
      this.ownsFd = true;
      this.stream = null;
    } else if (typeof target === 'number') {
      this.fd = target;
      this.ownsFd = false;
      this.stream = null;
    } else {
      this.fd = -1;
      this.ownsFd = false;
      this.stream = target;
      target.on('error', (err: unknown) => {
        this.streamError ??= err;
      });
    }
    writePcapHeader(this.buf, 0, resolution === 'ns', snaplen, this.linkType);
    this.len = PCAP_HEADER_BYTES;
    this.bytesWritten = PCAP_HEADER_BYTES;
  }

  /**
   * Appends one frame (cut to the snap length; the data is copied, so the
   * frame may be reused at once). Returns false when a stream target asks
   * for a pause: await drain() before writing much more.
   */
  writeFrame(frame: PcapFrame): boolean {
    this.check();
    if (frame.linkType !== this.linkType) {
      throw new PcapWriterError(`frame link type ${frame.linkType} differs from the file's ${this.linkType}`);
    }
    const data = frame.data;
    const caplen = data.length < this.snaplen ? data.length : this.snaplen;
    const origLen = frame.length > data.length ? frame.length : data.length;
    const rec = PCAP_RECORD_HEADER_BYTES + caplen;
    if (this.len + rec > this.buf.length) this.flushBuffer();
    msToSecSub(frame.tsMs, this.units);
    const b = this.buf;
    let at = this.len;
    b.writeUInt32LE(secSubResult.sec, at);
    b.writeUInt32LE(secSubResult.sub, at + 4);
    b.writeUInt32LE(caplen, at + 8);
    b.writeUInt32LE(origLen > 0xffffffff ? 0xffffffff : origLen, at + 12);
    at += PCAP_RECORD_HEADER_BYTES;
    if (rec <= b.length) {
      data.copy(b, at, 0, caplen);
      this.len = at + caplen;
    } else {
      // Larger than the whole buffer: header from the buffer, data straight from the frame.
      this.len = at;
      this.flushBuffer();
      this.output(data.subarray(0, caplen));
    }
    this.framesWritten++;
    this.bytesWritten += rec;
    return !this.needDrain;
  }

  /** Hands buffered records to the target now. */
  flush(): void {
    this.check();
    this.flushBuffer();
  }

  /** Resolves when a stream target can take more (at once for files). */
  async drain(): Promise<void> {
    const s = this.stream;
    if (s === null || !this.needDrain) return;
    if (s.writableNeedDrain) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          cleanup();
          resolve();
        };
        const onError = (err: unknown): void => {
          cleanup();
          reject(new PcapWriterError(`pcap stream failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
        };
        const onClose = (): void => {
          cleanup();
          reject(new PcapWriterError('pcap stream closed while waiting for drain'));
        };
        const cleanup = (): void => {
          s.off('drain', onDrain);
          s.off('error', onError);
          s.off('close', onClose);
        };
        s.on('drain', onDrain);
        s.on('error', onError);
        s.on('close', onClose);
      });
    }
    this.needDrain = false;
  }

  /** Flushes and closes the target (a given fd or stream stays open with keepOpen). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.check();
    this.flushBuffer();
    this.closed = true;
    if (this.stream !== null) {
      if (!this.keepOpen) {
        this.stream.end();
        try {
          await finished(this.stream);
        } catch (err) {
          throw new PcapWriterError(`pcap stream failed: ${(err as Error).message}`, { cause: err });
        }
      }
      if (this.streamError !== undefined) {
        throw new PcapWriterError(`pcap stream failed: ${(this.streamError as Error)?.message}`, { cause: this.streamError });
      }
    } else if (this.ownsFd || !this.keepOpen) {
      try {
        closeSync(this.fd);
      } catch (err) {
        throw new PcapWriterError(`closing the pcap file failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  private check(): void {
    if (this.closed) throw new PcapWriterError('pcap writer is closed');
    if (this.streamError !== undefined) {
      throw new PcapWriterError(`pcap stream failed: ${(this.streamError as Error)?.message ?? String(this.streamError)}`, { cause: this.streamError });
    }
  }

  private flushBuffer(): void {
    if (this.len === 0) return;
    this.output(this.buf.subarray(0, this.len));
    this.len = 0;
  }

  private output(bytes: Buffer): void {
    if (this.stream !== null) {
      // The stream keeps the chunk until written, and our buffer is reused: hand it a copy.
      if (!this.stream.write(Buffer.from(bytes))) this.needDrain = true;
      return;
    }
    let off = 0;
    try {
      while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    } catch (err) {
      throw new PcapWriterError(`writing the pcap file failed: ${(err as Error).message}`, { cause: err });
    }
  }
}
