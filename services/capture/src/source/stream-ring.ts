/**
 * A bounded ring of per-stream pcap files, so a snapshot of chosen streams
 * can be cut later (for example "download the pcap of this API call").
 *
 * Each stream gets its own classic pcap file `stream-<id>.pcap` in `dir`,
 * created with the link type of its first frame. Rules:
 *  - Link types: a pcap file has one link type, so a frame whose link type
 *    differs from the stream's first frame is dropped and counted
 *    (stats.droppedFrames and stats.linkTypeMismatches).
 *  - Eviction: when the files together exceed maxBytes, or a new stream
 *    would exceed maxFiles, the oldest streams (by first frame) are deleted
 *    and counted, ended or not. Later frames of an evicted stream are
 *    dropped and counted (ended streams too: a connection's last ACK can
 *    follow its end), since a file missing its beginning would be a
 *    misleading snapshot. The last 65,536 evicted ids are remembered.
 *  - end(): the stream's buffer goes to disk and is released; a frame
 *    written to it later is still appended.
 *  - Memory: writes are buffered per stream (streamBufferBytes) and all
 *    buffers together are capped (maxBufferedBytes: beyond it every buffer is
 *    flushed and released); files are opened only to append, so no file
 *    descriptor stays open per stream.
 *  - The ring owns `dir`: files named like its own left there by an earlier
 *    run are deleted at construction.
 * Writes are synchronous (buffered); snapshot() is asynchronous and sees the
 * chosen streams as they were when it was called.
 */
import { closeSync, mkdirSync, openSync, read, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame } from '../types.ts';
import { DEFAULT_SNAPLEN, MAX_RECORD_BYTES, PCAP_HEADER_BYTES, PCAP_RECORD_HEADER_BYTES, msToSecSub, secSubResult, tsToMs, writePcapHeader } from './pcap-format.ts';
import { PcapWriter, type PcapResolution } from './pcap-writer.ts';

export interface StreamPcapRingOptions {
  /** Folder of the per-stream files (created if missing; owned by the ring). */
  dir: string;
  /** Bytes of all stream files together. */
  maxBytes: number;
  /** Number of stream files. */
  maxFiles: number;
  /** Frames are cut to this many bytes (default 262144). */
  snaplen?: number;
  /** Timestamp resolution of the files (default 'us'). */
  resolution?: PcapResolution;
  /** Buffered bytes per stream before an append to its file (default 16 KiB). */
  streamBufferBytes?: number;
  /** Buffer memory of all streams together (default 4 MiB). */
  maxBufferedBytes?: number;
}

export interface StreamPcapRingStats {
  /** Stream files in the ring (buffered ones included). */
  files: number;
  /** Their bytes (buffered ones included). */
  bytes: number;
  evictedStreams: number;
  evictedBytes: number;
  /** Frames not stored: of an evicted stream, or of another link type than their stream's. */
  droppedFrames: number;
  linkTypeMismatches: number;
  /** Bytes waiting in memory. */
  bufferedBytes: number;
}

export interface StreamSnapshotResult {
  path: string;
  linkType: number;
  frames: number;
  /** Bytes of the snapshot file. */
  bytes: number;
  /** Streams in the snapshot. */
  streams: number[];
  /** Asked for but not in the ring (never seen, or evicted). */
  missing: number[];
  /** In the ring but left out: another link type than the first stream found (a pcap has one). */
  skipped: number[];
}

export class StreamRingError extends Error {
  override readonly name = 'StreamRingError';
}

interface StreamFile {
  readonly id: number;
  readonly path: string;
  readonly linkType: number;
  /** Bytes of the file including what is buffered. */
  size: number;
  /** Bytes already on disk. */
  flushed: number;
  pending: Buffer | null;
  pendingLen: number;
}

const FILE_RE = /^stream-\d+\.pcap$/;
/** How many evicted stream ids are remembered (to drop their later frames). */
const EVICTED_MEMORY = 65_536;

export class StreamPcapRing {
  readonly dir: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  readonly snaplen: number;
  readonly resolution: PcapResolution;

  private readonly units: number;
  private readonly streamBufferBytes: number;
  private readonly maxBufferedBytes: number;
  /** Insertion order = order of first frame: the first entry is the oldest. */
  private readonly streams = new Map<number, StreamFile>();
  private readonly evictedLive = new Set<number>();
  private readonly header = Buffer.allocUnsafe(PCAP_RECORD_HEADER_BYTES);
  private totalBytes = 0;
  private bufferedCapacity = 0;
  private bufferedBytes = 0;
  private evictedStreams = 0;
  private evictedBytes = 0;
  private droppedFrames = 0;
  private linkTypeMismatches = 0;
  private closed = false;

  constructor(opts: StreamPcapRingOptions) {
    const snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    const resolution = opts.resolution ?? 'us';
    this.streamBufferBytes = opts.streamBufferBytes ?? 16 * 1024;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 4 * 1024 * 1024;
    if (!(opts.maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${opts.maxBytes}`);
    if (!Number.isInteger(opts.maxFiles) || opts.maxFiles < 1) throw new RangeError(`maxFiles must be an integer >= 1, got ${opts.maxFiles}`);
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > MAX_RECORD_BYTES) throw new RangeError(`snaplen must be in 1..${MAX_RECORD_BYTES}, got ${snaplen}`);
    if (resolution !== 'us' && resolution !== 'ns') throw new RangeError(`resolution must be 'us' or 'ns', got ${String(resolution)}`);
    if (!Number.isInteger(this.streamBufferBytes) || this.streamBufferBytes < 64) throw new RangeError('streamBufferBytes must be an integer >= 64');
    if (!(this.maxBufferedBytes >= this.streamBufferBytes)) throw new RangeError('maxBufferedBytes must be >= streamBufferBytes');
    this.dir = opts.dir;
    this.maxBytes = opts.maxBytes;
    this.maxFiles = opts.maxFiles;
    this.snaplen = snaplen;
    this.resolution = resolution;
    this.units = resolution === 'ns' ? 1e9 : 1e6;
    try {
      mkdirSync(this.dir, { recursive: true });
      for (const name of readdirSync(this.dir)) if (FILE_RE.test(name)) unlinkSync(join(this.dir, name));
    } catch (err) {
      throw new StreamRingError(`cannot prepare stream ring folder ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  get stats(): StreamPcapRingStats {
    return {
      files: this.streams.size,
      bytes: this.totalBytes,
      evictedStreams: this.evictedStreams,
      evictedBytes: this.evictedBytes,
      droppedFrames: this.droppedFrames,
      linkTypeMismatches: this.linkTypeMismatches,
      bufferedBytes: this.bufferedBytes,
    };
  }

  /** Whether the stream's file is in the ring. */
  has(streamId: number): boolean {
    return this.streams.has(streamId);
  }

  /**
   * Appends a frame to its stream's file (the data is copied). Returns false
   * when the frame was not kept (evicted stream, link type mismatch, or the
   * stream was evicted to make room right after).
   */
  write(streamId: number, frame: Frame): boolean {
    if (this.closed) throw new StreamRingError('stream ring is closed');
    let s = this.streams.get(streamId);
    if (s === undefined) {
      if (!Number.isSafeInteger(streamId) || streamId < 0) throw new RangeError(`stream id must be a non-negative integer, got ${streamId}`);
      if (this.evictedLive.has(streamId)) {
        this.droppedFrames++;
        return false;
      }
      while (this.streams.size >= this.maxFiles) this.evictOldest();
      s = {
        id: streamId,
        path: join(this.dir, `stream-${streamId}.pcap`),
        linkType: frame.linkType,
        size: 0,
        flushed: 0,
        pending: null,
        pendingLen: 0,
      };
      this.streams.set(streamId, s);
      this.reserve(s, PCAP_HEADER_BYTES);
      writePcapHeader(s.pending!, s.pendingLen, this.resolution === 'ns', this.snaplen, s.linkType);
      this.appended(s, PCAP_HEADER_BYTES);
    } else if (frame.linkType !== s.linkType) {
      this.droppedFrames++;
      this.linkTypeMismatches++;
      return false;
    }

    const data = frame.data;
    const caplen = data.length < this.snaplen ? data.length : this.snaplen;
    const origLen = frame.length > data.length ? frame.length : data.length;
    const rec = PCAP_RECORD_HEADER_BYTES + caplen;
    msToSecSub(frame.tsMs, this.units);
    if (rec > this.streamBufferBytes) {
      // Bigger than a stream buffer: straight to the file, after what is buffered.
      const h = this.header;
      h.writeUInt32LE(secSubResult.sec, 0);
      h.writeUInt32LE(secSubResult.sub, 4);
      h.writeUInt32LE(caplen, 8);
      h.writeUInt32LE(Math.min(origLen, 0xffffffff), 12);
      this.flushStream(s, h, data.subarray(0, caplen));
      s.size += rec;
      s.flushed += rec;
      this.totalBytes += rec;
    } else {
      this.reserve(s, rec);
      const b = s.pending!;
      const at = s.pendingLen;
      b.writeUInt32LE(secSubResult.sec, at);
      b.writeUInt32LE(secSubResult.sub, at + 4);
      b.writeUInt32LE(caplen, at + 8);
      b.writeUInt32LE(Math.min(origLen, 0xffffffff), at + 12);
      data.copy(b, at + PCAP_RECORD_HEADER_BYTES, 0, caplen);
      this.appended(s, rec);
    }

    if (this.bufferedCapacity > this.maxBufferedBytes) this.flushAll(true);
    while (this.totalBytes > this.maxBytes && this.streams.size > 0) this.evictOldest();
    return this.streams.has(streamId);
  }

  /** The stream is over: its buffer goes to disk and is released; the file stays until evicted (a later frame is still appended). */
  end(streamId: number): void {
    const s = this.streams.get(streamId);
    if (s === undefined) return;
    this.flushStream(s, null, null);
    this.release(s);
  }

  /** Writes every buffered byte to disk (buffers kept for reuse). */
  flush(): void {
    this.flushAll(false);
  }

  /**
   * Writes one pcap of the chosen streams to outPath, frames merged by
   * timestamp (ties keep the order of streamIds, then file order). Streams
   * are taken as they are now: frames written while the snapshot runs are
   * not in it. The file appears complete or not at all (written beside it, then renamed).
   */
  async snapshot(streamIds: readonly number[], outPath: string): Promise<StreamSnapshotResult> {
    if (this.closed) throw new StreamRingError('stream ring is closed');
    const chosen: StreamFile[] = [];
    const missing: number[] = [];
    const skipped: number[] = [];
    let linkType = -1;
    for (const id of new Set(streamIds)) {
      const s = this.streams.get(id);
      if (s === undefined) missing.push(id);
      else if (linkType === -1 || s.linkType === linkType) {
        linkType = s.linkType;
        chosen.push(s);
      } else skipped.push(id);
    }
    if (chosen.length === 0) {
      throw new StreamRingError(`snapshot: none of the streams [${streamIds.join(', ')}] is in the ring (never seen or evicted)`);
    }
    // Synchronously (no write can interleave): flush, then open. An eviction later
    // unlinks the file but our descriptor still reads it.
    const cursors: RecordCursor[] = [];
    try {
      for (let i = 0; i < chosen.length; i++) {
        const s = chosen[i];
        this.flushStream(s, null, null);
        cursors.push(new RecordCursor(openSync(s.path, 'r'), s.flushed, i, this.units, this.snaplen, s.path));
      }
    } catch (err) {
      for (const c of cursors) c.close();
      throw err instanceof StreamRingError ? err : new StreamRingError(`snapshot: cannot open a stream file: ${(err as Error).message}`, { cause: err });
    }

    const partial = `${outPath}.partial`;
    let writer: PcapWriter | null = null;
    try {
      writer = new PcapWriter(partial, { linkType, snaplen: this.snaplen, resolution: this.resolution });
      const heap: RecordCursor[] = [];
      for (const c of cursors) if (await c.next()) heapPush(heap, c);
      const frame: Frame = { tsMs: 0, captureLength: 0, length: 0, linkType, interfaceId: 0, data: Buffer.alloc(0) };
      while (heap.length > 0) {
        const c = heap[0];
        frame.tsMs = c.tsMs;
        frame.data = c.data;
        frame.captureLength = c.data.length;
        frame.length = c.origLen;
        writer.writeFrame(frame);
        if (await c.next()) heapFixTop(heap);
        else heapPopTop(heap);
      }
      const frames = writer.framesWritten;
      const bytes = writer.bytesWritten;
      await writer.close();
      writer = null;
      renameSync(partial, outPath);
      return { path: outPath, linkType, frames, bytes, streams: chosen.map((s) => s.id), missing, skipped };
    } catch (err) {
      if (writer !== null) await writer.close().catch(() => undefined);
      try {
        unlinkSync(partial);
      } catch {
        // Never created, or already gone.
      }
      throw err instanceof StreamRingError ? err : new StreamRingError(`snapshot to ${outPath} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      for (const c of cursors) c.close();
    }
  }

  /** Flushes everything and stops accepting frames; the files stay unless removeFiles. */
  close(removeFiles = false): void {
    if (this.closed) return;
    try {
      if (!removeFiles) this.flushAll(true);
    } finally {
      this.closed = true;
      if (removeFiles) {
        for (const s of this.streams.values()) {
          this.release(s);
          unlinkQuiet(s.path);
        }
        this.streams.clear();
        this.totalBytes = 0;
      }
    }
  }

  // ---- internals ----------------------------------------------------------

  /** Makes room for n more bytes in the stream's buffer, flushing it when full. */
  private reserve(s: StreamFile, n: number): void {
    if (s.pending !== null && s.pendingLen + n <= s.pending.length) return;
    if (s.pendingLen + n > this.streamBufferBytes) this.flushStream(s, null, null);
    const need = s.pendingLen + n;
    if (s.pending === null || need > s.pending.length) {
      // Start small and double: most streams are a few packets.
      let cap = s.pending === null ? 1024 : s.pending.length;
      while (cap < need) cap *= 2;
      if (cap > this.streamBufferBytes) cap = this.streamBufferBytes;
      const grown = Buffer.allocUnsafe(cap);
      if (s.pending !== null) {
        s.pending.copy(grown, 0, 0, s.pendingLen);
        this.bufferedCapacity -= s.pending.length;
      }
      this.bufferedCapacity += cap;
      s.pending = grown;
    }
  }

  private appended(s: StreamFile, n: number): void {
    s.pendingLen += n;
    s.size += n;
    this.totalBytes += n;
    this.bufferedBytes += n;
  }

  private release(s: StreamFile): void {
    if (s.pending !== null) {
      this.bufferedCapacity -= s.pending.length;
      this.bufferedBytes -= s.pendingLen;
      s.pending = null;
      s.pendingLen = 0;
    }
  }

  private flushAll(releaseBuffers: boolean): void {
    for (const s of this.streams.values()) {
      this.flushStream(s, null, null);
      if (releaseBuffers) this.release(s);
    }
  }

  /** Appends the stream's buffered bytes (and optionally one more record given apart) to its file. */
  private flushStream(s: StreamFile, extraHeader: Buffer | null, extraData: Buffer | null): void {
    if (s.pendingLen === 0 && extraHeader === null) return;
    let fd = -1;
    try {
      fd = openSync(s.path, s.flushed === 0 ? 'w' : 'a');
      if (s.pending !== null && s.pendingLen > 0) writeAll(fd, s.pending.subarray(0, s.pendingLen));
      if (extraHeader !== null) writeAll(fd, extraHeader);
      if (extraData !== null) writeAll(fd, extraData);
    } catch (err) {
      if (fd >= 0) closeQuiet(fd);
      // The file no longer matches what we counted: drop the stream, counted as evicted.
      this.remove(s);
      throw new StreamRingError(`writing ${s.path} failed: ${(err as Error).message}`, { cause: err });
    }
    closeSync(fd);
    s.flushed += s.pendingLen;
    this.bufferedBytes -= s.pendingLen;
    s.pendingLen = 0;
  }

  private evictOldest(): void {
    const first = this.streams.values().next();
    if (first.done === true) return;
    this.remove(first.value);
  }

  private remove(s: StreamFile): void {
    this.streams.delete(s.id);
    this.release(s);
    unlinkQuiet(s.path);
    this.totalBytes -= s.size;
    this.evictedStreams++;
    this.evictedBytes += s.size;
    this.evictedLive.add(s.id);
    if (this.evictedLive.size > EVICTED_MEMORY) {
      const oldest = this.evictedLive.values().next();
      if (oldest.done !== true) this.evictedLive.delete(oldest.value);
    }
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

function closeQuiet(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already failing; the first error is the one reported.
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Never flushed to disk, or already gone.
  }
}

/** Pulls the records of one ring file (our own format: little-endian pcap) up to a byte limit. */
class RecordCursor {
  readonly order: number;
  tsMs = 0;
  origLen = 0;
  data: Buffer = Buffer.alloc(0);

  private readonly fd: number;
  private readonly limit: number;
  private readonly units: number;
  private readonly snaplen: number;
  private readonly path: string;
  private buf = Buffer.allocUnsafe(64 * 1024);
  private pos = 0;
  private end = 0;
  /** File offset of the next read. */
  private fileOffset = PCAP_HEADER_BYTES;
  private closed = false;

  constructor(fd: number, limit: number, order: number, units: number, snaplen: number, path: string) {
    this.fd = fd;
    this.limit = limit;
    this.order = order;
    this.units = units;
    this.snaplen = snaplen;
    this.path = path;
  }

  /** Loads the next record into tsMs/origLen/data (valid until the next call); false at the end. */
  async next(): Promise<boolean> {
    if (!(await this.fill(PCAP_RECORD_HEADER_BYTES))) return false;
    const b = this.buf;
    const p = this.pos;
    const sec = b.readUInt32LE(p);
    const sub = b.readUInt32LE(p + 4);
    const caplen = b.readUInt32LE(p + 8);
    const origLen = b.readUInt32LE(p + 12);
    if (caplen > this.snaplen) throw new StreamRingError(`corrupt stream file ${this.path}: record length ${caplen}`);
    const rec = PCAP_RECORD_HEADER_BYTES + caplen;
    if (!(await this.fill(rec))) throw new StreamRingError(`stream file ${this.path} is shorter than written`);
    this.tsMs = tsToMs(sec, sub, this.units);
    this.origLen = origLen;
    this.data = this.buf.subarray(this.pos + PCAP_RECORD_HEADER_BYTES, this.pos + rec);
    this.pos += rec;
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuiet(this.fd);
  }

  private async fill(n: number): Promise<boolean> {
    while (this.end - this.pos < n) {
      if (this.fileOffset >= this.limit) return false;
      if (this.pos > 0) {
        this.buf.copyWithin(0, this.pos, this.end);
        this.end -= this.pos;
        this.pos = 0;
      }
      if (n > this.buf.length) {
        const grown = Buffer.allocUnsafe(n);
        this.buf.copy(grown, 0, 0, this.end);
        this.buf = grown;
      }
      const want = Math.min(this.buf.length - this.end, this.limit - this.fileOffset);
      const got = await readAt(this.fd, this.buf, this.end, want, this.fileOffset);
      if (got === 0) return false;
      this.end += got;
      this.fileOffset += got;
    }
    return true;
  }
}

function readAt(fd: number, buf: Buffer, at: number, len: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, at, len, position, (err, n) => (err ? reject(new StreamRingError(`reading a stream file failed: ${err.message}`, { cause: err })) : resolve(n)));
  });
}

function before(a: RecordCursor, b: RecordCursor): boolean {
  return a.tsMs < b.tsMs || (a.tsMs === b.tsMs && a.order < b.order);
}

function heapPush(h: RecordCursor[], c: RecordCursor): void {
  h.push(c);
  let i = h.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(h[i], h[parent])) break;
    [h[i], h[parent]] = [h[parent], h[i]];
    i = parent;
  }
}

function heapFixTop(h: RecordCursor[]): void {
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let m = i;
    if (l < h.length && before(h[l], h[m])) m = l;
    if (r < h.length && before(h[r], h[m])) m = r;
    if (m === i) return;
    [h[i], h[m]] = [h[m], h[i]];
    i = m;
  }
}

function heapPopTop(h: RecordCursor[]): void {
  const last = h.pop()!;
  if (h.length > 0) {
    h[0] = last;
    heapFixTop(h);
  }
}
