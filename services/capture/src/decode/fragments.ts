/**
 * IPv4 and IPv6 fragment reassembly with bounded memory.
 *
 * Datagrams are keyed by (version, src, dst, id, protocol) for IPv4 (RFC 791)
 * and (version, src, dst, id) for IPv6 (RFC 8200). Each in-flight datagram
 * owns a buffer laid out as [IP header | data], the data starting at a fixed
 * base, so a completed datagram is a contiguous, valid IP packet the decoder
 * parses in place (that buffer becomes `out.buf`).
 *
 * Overlaps: first arrival wins. Coverage is tracked per 8-byte block (the
 * fragment offset unit); a fragment's bytes are copied only into blocks no
 * earlier fragment filled, so duplicates and overlaps can never rewrite data
 * already held (the "teardrop"/overwrite attacks give the same bytes on every
 * replay of a capture). A fragment that contradicts what is held — a second,
 * different end, or data past the known end — is refused and counted.
 * Only the offset-0 fragment's header is kept (the first to arrive, if it
 * came twice); for IPv6 the unfragmentable extension headers are not kept:
 * the reassembled packet is the fixed header followed by the fragmentable part.
 *
 * Bounds: at most `maxDatagrams` in flight (the oldest is evicted for a new
 * one), buffers of in-flight datagrams total at most `maxBytes` (oldest
 * evicted first), no datagram beyond 65535 bytes, and a datagram expires
 * `timeoutMs` of capture time after its first fragment (Linux's ipfrag rule).
 * Slots and small buffers are pooled, so steady fragment traffic does not
 * allocate either.
 */
import { DECODE } from '../types.ts';
import type { DecoderStats } from './stats.ts';

/** Returned by add*() when the fragment completed its datagram: read done* for where it is. */
export const REASSEMBLED = -1;

/** Where reassembled data starts in a datagram's buffer: after the largest IPv4 header, or the IPv6 fixed header. */
export const BASE_V4 = 60;
export const BASE_V6 = 40;
const MAX_DATA = 65535;
const MAX_CAPACITY = BASE_V4 + MAX_DATA;
const MIN_CAPACITY = 2048;
/** Buffers up to this size stay with their slot when it is freed (larger ones go back to the GC). */
const RETAIN_BYTES = 8192;
/** Coverage bitmap: one bit per 8-byte block of the 65535 data bytes. */
const BITMAP_BYTES = 1024;

class Datagram {
  version = 0;
  protocol = 0;
  id = 0;
  hash = 0;
  /** src then dst, as in the IP header (8 bytes IPv4, 32 IPv6). */
  readonly addrs = new Uint8Array(32);
  bucketNext: Datagram | null = null;
  older: Datagram | null = null;
  newer: Datagram | null = null;
  createdMs = 0;
  buf: Buffer | null = null;
  readonly bits = new Uint8Array(BITMAP_BYTES);
  /** Data length, known once the last fragment (MF=0) arrived; -1 before. */
  totalLen = -1;
  /** Highest data byte end held. */
  maxEnd = 0;
  /** Data bytes held. */
  covered = 0;
  /** IPv4 header length of the offset-0 fragment (0 until it arrives); 40 for IPv6. */
  headerLen = 0;
  /** IPv6: next header of the offset-0 fragment's Fragment header. */
  nextHeader = 0;
}

export interface FragmentLimits {
  timeoutMs: number;
  maxDatagrams: number;
  maxBytes: number;
}

export class FragmentTable {
  /** Set when add*() returned REASSEMBLED: the datagram's buffer, where its IP header starts, and its data. */
  doneBuf: Buffer = Buffer.alloc(0);
  doneHeaderOffset = 0;
  doneDataOffset = 0;
  doneDataEnd = 0;
  /** IPv6: the next header of the fragmentable part. */
  doneNextHeader = 0;

  private readonly stats: DecoderStats;
  private readonly timeoutMs: number;
  private readonly maxDatagrams: number;
  private readonly maxBytes: number;
  private readonly buckets: (Datagram | null)[];
  private readonly mask: number;
  private readonly pool: Datagram[] = [];
  private oldest: Datagram | null = null;
  private newest: Datagram | null = null;
  private count = 0;
  private bytes = 0;

  constructor(limits: FragmentLimits, stats: DecoderStats) {
    this.stats = stats;
    this.timeoutMs = limits.timeoutMs;
    this.maxDatagrams = limits.maxDatagrams;
    this.maxBytes = Math.max(limits.maxBytes, MAX_CAPACITY);
    let size = 16;
    while (size < limits.maxDatagrams * 2) size *= 2;
    this.buckets = new Array<Datagram | null>(size).fill(null);
    this.mask = size - 1;
  }

  /**
   * An IPv4 fragment at `ip` (header `hl` bytes, complete: the caller checked
   * the declared length is captured), carrying `dataLen` bytes at data offset
   * `fragOff`. Returns FRAGMENT_HELD, MALFORMED (refused) or REASSEMBLED.
   */
  addV4(b: Buffer, ip: number, hl: number, dataLen: number, fragOff: number, more: boolean, nowMs: number): number {
    const proto = b[ip + 9];
    const id = (b[ip + 4] << 8) | b[ip + 5];
    if (dataLen === 0 || (more && (dataLen & 7) !== 0) || fragOff + dataLen + hl > MAX_DATA) return this.refuse();
    const hash = keyHash(b, ip + 12, 8, id, proto | 0x400);
    let d = this.find(hash, 4, proto, id, b, ip + 12, 8);
    d = this.freshen(d, nowMs);
    if (d === null) {
      d = this.create(hash, 4, proto, id, b, ip + 12, 8, nowMs);
    } else if (this.contradicts(d, fragOff + dataLen, more)) {
      return this.refuse();
    }
    this.store(d, b, ip + hl, dataLen, fragOff, more, BASE_V4);
    if (fragOff === 0 && d.headerLen === 0) {
      b.copy(d.buf!, BASE_V4 - hl, ip, ip + hl);
      d.headerLen = hl;
    }
    return this.maybeComplete(d);
  }

  /**
   * An IPv6 fragment: fixed header at `ip`, Fragment header at `fh`, `dataLen`
   * bytes after it (complete: checked by the caller).
   */
  addV6(b: Buffer, ip: number, fh: number, dataLen: number, nowMs: number): number {
    const fo = (b[fh + 2] << 8) | b[fh + 3];
    const fragOff = fo & 0xfff8;
    const more = (fo & 1) !== 0;
    const id = ((b[fh + 4] << 24) | (b[fh + 5] << 16) | (b[fh + 6] << 8) | b[fh + 7]) >>> 0;
    if (dataLen === 0 || (more && (dataLen & 7) !== 0) || fragOff + dataLen > MAX_DATA) return this.refuse();
    const hash = keyHash(b, ip + 8, 32, id, 0x600);
    let d = this.find(hash, 6, 0, id, b, ip + 8, 32);
    d = this.freshen(d, nowMs);
    if (d === null) {
      d = this.create(hash, 6, 0, id, b, ip + 8, 32, nowMs);
    } else if (this.contradicts(d, fragOff + dataLen, more)) {
      return this.refuse();
    }
    this.store(d, b, fh + 8, dataLen, fragOff, more, BASE_V6);
    if (fragOff === 0 && d.headerLen === 0) {
      b.copy(d.buf!, 0, ip, ip + 40);
      d.headerLen = 40;
      d.nextHeader = b[fh];
    }
    return this.maybeComplete(d);
  }

  /** Drops datagrams whose first fragment is `timeoutMs` older than `nowMs`; returns how many. */
  expire(nowMs: number): number {
    let n = 0;
    // A full walk (not just the head): capture timestamps need not be monotonic. Bounded by maxDatagrams.
    for (let d = this.oldest; d !== null; ) {
      const next = d.newer;
      if (nowMs - d.createdMs >= this.timeoutMs) {
        this.release(d);
        n++;
      }
      d = next;
    }
    this.stats.datagramsExpired += n;
    return n;
  }

  /** Drops every datagram in flight (counted as expired); returns how many. */
  clear(): number {
    let n = 0;
    while (this.oldest !== null) {
      this.release(this.oldest);
      n++;
    }
    this.stats.datagramsExpired += n;
    return n;
  }

  private refuse(): number {
    this.stats.fragmentsDropped++;
    return DECODE.MALFORMED;
  }

  /** A datagram found for the key but past its timeout is dropped: this fragment starts a new one (ids wrap). */
  private freshen(d: Datagram | null, nowMs: number): Datagram | null {
    if (d !== null && nowMs - d.createdMs >= this.timeoutMs) {
      this.release(d);
      this.stats.datagramsExpired++;
      return null;
    }
    return d;
  }

  private contradicts(d: Datagram, end: number, more: boolean): boolean {
    if (!more) return (d.totalLen >= 0 && d.totalLen !== end) || d.maxEnd > end;
    return d.totalLen >= 0 && end > d.totalLen;
  }

  private find(hash: number, version: number, proto: number, id: number, b: Buffer, at: number, n: number): Datagram | null {
    for (let d = this.buckets[hash & this.mask]; d !== null; d = d.bucketNext) {
      if (d.hash !== hash || d.version !== version || d.id !== id || d.protocol !== proto) continue;
      let same = true;
      for (let i = 0; i < n; i++) {
        if (d.addrs[i] !== b[at + i]) {
          same = false;
          break;
        }
      }
      if (same) return d;
    }
    return null;
  }

  private create(hash: number, version: number, proto: number, id: number, b: Buffer, at: number, n: number, nowMs: number): Datagram {
    // Opportunistic expiry from the old end, so a table nobody ticks still frees stale state first.
    while (this.oldest !== null && nowMs - this.oldest.createdMs >= this.timeoutMs) {
      this.release(this.oldest);
      this.stats.datagramsExpired++;
    }
    while (this.count >= this.maxDatagrams && this.oldest !== null) {
      this.release(this.oldest);
      this.stats.datagramsEvicted++;
    }
    const d = this.pool.pop() ?? new Datagram();
    d.version = version;
    d.protocol = proto;
    d.id = id;
    d.hash = hash;
    for (let i = 0; i < n; i++) d.addrs[i] = b[at + i];
    d.createdMs = nowMs;
    d.totalLen = -1;
    d.maxEnd = 0;
    d.covered = 0;
    d.headerLen = 0;
    d.nextHeader = 0;
    const slot = hash & this.mask;
    d.bucketNext = this.buckets[slot];
    this.buckets[slot] = d;
    d.older = this.newest;
    d.newer = null;
    if (this.newest !== null) this.newest.newer = d;
    else this.oldest = d;
    this.newest = d;
    this.count++;
    if (d.buf !== null) this.bytes += d.buf.length;
    this.stats.datagramsInFlight = this.count;
    this.stats.fragmentBytesInFlight = this.bytes;
    return d;
  }

  private release(d: Datagram): void {
    const slot = d.hash & this.mask;
    if (this.buckets[slot] === d) this.buckets[slot] = d.bucketNext;
    else {
      for (let p = this.buckets[slot]; p !== null; p = p.bucketNext) {
        if (p.bucketNext === d) {
          p.bucketNext = d.bucketNext;
          break;
        }
      }
    }
    d.bucketNext = null;
    if (d.older !== null) d.older.newer = d.newer;
    else this.oldest = d.newer;
    if (d.newer !== null) d.newer.older = d.older;
    else this.newest = d.older;
    d.older = d.newer = null;
    d.bits.fill(0, 0, (d.maxEnd + 63) >> 6);
    if (d.buf !== null) {
      this.bytes -= d.buf.length;
      if (d.buf.length > RETAIN_BYTES) d.buf = null;
    }
    this.count--;
    this.pool.push(d);
    this.stats.datagramsInFlight = this.count;
    this.stats.fragmentBytesInFlight = this.bytes;
  }

  /** Copies the fragment's bytes into the blocks nobody filled yet (first arrival wins). */
  private store(d: Datagram, b: Buffer, dataAt: number, dataLen: number, fragOff: number, more: boolean, base: number): void {
    const end = fragOff + dataLen;
    this.reserve(d, base + end);
    if (!more) d.totalLen = end;
    const buf = d.buf!;
    const bits = d.bits;
    let overlapped = false;
    let runStart = -1;
    const lastBlock = (end - 1) >> 3;
    for (let blk = fragOff >> 3; blk <= lastBlock + 1; blk++) {
      if ((blk & 7) === 0 && blk + 7 <= lastBlock && bits[blk >> 3] === 0) {
        // Eight free blocks at once: the common, non-overlapping case.
        bits[blk >> 3] = 0xff;
        if (runStart < 0) runStart = blk << 3;
        blk += 7;
        continue;
      }
      const free = blk <= lastBlock && (bits[blk >> 3] & (1 << (blk & 7))) === 0;
      if (free) {
        bits[blk >> 3] |= 1 << (blk & 7);
        if (runStart < 0) runStart = blk << 3;
        continue;
      }
      if (blk <= lastBlock) overlapped = true;
      if (runStart >= 0) {
        const runEnd = Math.min(blk << 3, end);
        b.copy(buf, base + runStart, dataAt + (runStart - fragOff), dataAt + (runEnd - fragOff));
        d.covered += runEnd - runStart;
        runStart = -1;
      }
    }
    if (end > d.maxEnd) d.maxEnd = end;
    this.stats.fragmentsHeld++;
    if (overlapped) this.stats.fragmentOverlaps++;
  }

  /** Grows the datagram's buffer to `need` bytes, evicting the oldest other datagrams to stay within maxBytes. */
  private reserve(d: Datagram, need: number): void {
    const old = d.buf;
    if (old !== null && old.length >= need) return;
    let cap = old === null ? MIN_CAPACITY : old.length;
    while (cap < need) cap *= 2;
    if (cap > MAX_CAPACITY) cap = MAX_CAPACITY;
    const grow = cap - (old === null ? 0 : old.length);
    while (this.bytes + grow > this.maxBytes) {
      const victim = this.oldest === d ? d.newer : this.oldest;
      if (victim === null) break; // d alone: maxBytes >= MAX_CAPACITY, so it fits
      this.release(victim);
      this.stats.datagramsEvicted++;
    }
    const nb = Buffer.alloc(cap); // zeroed, and never a slice of the shared pool (we keep it)
    if (old !== null) old.copy(nb, 0, 0, Math.min(old.length, need));
    d.buf = nb;
    this.bytes += grow;
    this.stats.fragmentBytesInFlight = this.bytes;
  }

  private maybeComplete(d: Datagram): number {
    if (d.totalLen < 0 || d.headerLen === 0 || d.covered !== d.totalLen) return DECODE.FRAGMENT_HELD;
    const buf = d.buf!;
    if (d.version === 4) {
      const h = BASE_V4 - d.headerLen;
      const total = d.headerLen + d.totalLen;
      if (total > MAX_DATA) {
        this.release(d);
        return this.refuse();
      }
      // Make the header describe the whole datagram: length, no fragment bits (DF kept), fresh checksum.
      buf[h + 2] = total >> 8;
      buf[h + 3] = total & 0xff;
      buf[h + 6] &= 0x40;
      buf[h + 7] = 0;
      buf[h + 10] = 0;
      buf[h + 11] = 0;
      let sum = 0;
      for (let i = h; i < BASE_V4; i += 2) sum += (buf[i] << 8) | buf[i + 1];
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      sum = ~sum & 0xffff;
      buf[h + 10] = sum >> 8;
      buf[h + 11] = sum & 0xff;
      this.doneHeaderOffset = h;
      this.doneDataOffset = BASE_V4;
    } else {
      buf[4] = d.totalLen >> 8;
      buf[5] = d.totalLen & 0xff;
      buf[6] = d.nextHeader;
      this.doneHeaderOffset = 0;
      this.doneDataOffset = BASE_V6;
      this.doneNextHeader = d.nextHeader;
    }
    this.doneBuf = buf;
    this.doneDataEnd = this.doneDataOffset + d.totalLen;
    this.stats.datagramsReassembled++;
    this.release(d); // the buffer stays referenced by doneBuf until the caller is done with this packet
    return REASSEMBLED;
  }
}

/** 32-bit hash of the key bytes (addresses) mixed with id and protocol/version. */
function keyHash(b: Buffer, at: number, n: number, id: number, tag: number): number {
  let h = Math.imul(id ^ 0x9e3779b9, 0x85ebca6b) ^ tag;
  for (let i = 0; i < n; i += 4) {
    const w = (b[at + i] << 24) | (b[at + i + 1] << 16) | (b[at + i + 2] << 8) | b[at + i + 3];
    h = Math.imul(h ^ w, 0x01000193);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}
