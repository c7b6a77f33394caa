/**
 * HPACK header block decoder (RFC 7541), one per direction of an HTTP/2
 * connection (each side's encoder feeds the other side's decoder).
 *
 * Bounds: the dynamic table never exceeds `hardMaxTableSize` whatever the
 * peers announce, a decoded header list keeps at most `maxListSize` (RFC 7540
 * size: octets + 32 per field; further fields are counted in `dropped`).
 *
 * Lost context: a malformed block, or a block the dissector could not read
 * (capture gap, oversized block), leaves the decoder without the entries that
 * block inserted. The decoder then goes on in *partial* mode: it knows only
 * the entries inserted after the loss. HPACK indexes the dynamic table from
 * the newest entry, so a reference to one of those is still exact; a reference
 * to an older one is unknown and that field is left out (counted in
 * `unknown`). A size update to 0 empties the table on both ends, which makes
 * the state fully known again.
 */
import { isUtf8 } from 'node:buffer';
import { huffmanDecode, huffmanMaxDecodedLength } from './hpack-huffman.ts';

/** A header block that cannot be decoded. The decoder has already switched to partial mode when this is thrown. */
export class HpackError extends Error {
  override name = 'HpackError';
}

/** RFC 7541 Appendix A, index 1..61 (index 0 unused). */
const STATIC: readonly (readonly [string, string])[] = [
  ['', ''],
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = 61;
/** Octet lengths of the static entries (they are ASCII). */
const STATIC_NAME_OCTETS = STATIC.map(([n]) => n.length);
const STATIC_VALUE_OCTETS = STATIC.map(([, v]) => v.length);

export const HPACK_DEFAULT_TABLE_SIZE = 4096;
/** Largest dynamic table kept whatever SETTINGS_HEADER_TABLE_SIZE says (memory per direction). */
export const HPACK_HARD_MAX_TABLE_SIZE = 64 * 1024;
/** Largest decoded header list kept (RFC 7540 size). */
export const HPACK_MAX_LIST_SIZE = 64 * 1024;

export interface HeaderBlock {
  /** Flat [name0, value0, name1, value1, ...] in wire order. */
  fields: string[];
  /** RFC 7540 §6.5.2 size of the kept fields (name + value octets + 32 each). */
  listSize: number;
  /** Fields left out because they referenced entries lost with the context (partial mode). */
  unknown: number;
  /** Fields left out because the list was over `maxListSize`. */
  dropped: number;
}

const EMPTY = Buffer.alloc(0);
const NON_ASCII = /[^\x00-\x7f]/;
let scratch = Buffer.allocUnsafe(4096);

/** Header octets as a string: latin1 (byte-exact), or UTF-8 when the octets are valid UTF-8 beyond ASCII. */
function octetsToString(buf: Buffer, start: number, end: number): string {
  const s = buf.toString('latin1', start, end);
  if (!NON_ASCII.test(s)) return s;
  const sub = buf.subarray(start, end);
  return isUtf8(sub) ? sub.toString('utf8') : s;
}

export class HpackDecoder {
  /** Ring of entries; `head` is the slot of the newest. A null name is an entry whose name was unknown (partial mode). */
  private names: (string | null)[] = [];
  private values: string[] = [];
  private sizes: number[] = [];
  private nameOctets: number[] = [];
  private cap = 0;
  private head = 0;
  private count = 0;
  /** RFC 7541 size of the table (sum of entry sizes). */
  private size = 0;
  /** Current maximum set by the encoder's size updates. */
  private maxSize: number;
  /** Largest size the encoder may set: the decoding side's SETTINGS_HEADER_TABLE_SIZE. */
  private allowedMax: number;
  private readonly hardMax: number;
  private readonly maxListSize: number;
  /** Why the context was lost (partial mode), or null when the table is fully known. */
  lostReason: string | null = null;
  // Decoding cursor, fields so the helpers need not return tuples.
  private buf: Buffer = EMPTY;
  private pos = 0;
  private end = 0;
  private strStart = 0;
  private strEnd = 0;
  private strBuf: Buffer = EMPTY;

  constructor(opts: { tableSize?: number; hardMaxTableSize?: number; maxListSize?: number } = {}) {
    this.hardMax = opts.hardMaxTableSize ?? HPACK_HARD_MAX_TABLE_SIZE;
    this.maxSize = Math.min(opts.tableSize ?? HPACK_DEFAULT_TABLE_SIZE, this.hardMax);
    this.allowedMax = this.maxSize;
    this.maxListSize = opts.maxListSize ?? HPACK_MAX_LIST_SIZE;
  }

  /**
   * The decoding side announced SETTINGS_HEADER_TABLE_SIZE. The limit only
   * grows: a lowered setting takes effect at the encoder only after the ACK,
   * and a capture cannot tell exactly when, so the largest announced value is
   * accepted (never above the hard maximum).
   */
  setAllowedTableSize(n: number): void {
    this.allowedMax = Math.min(Math.max(this.allowedMax, n), this.hardMax);
  }

  /** The context is gone (capture gap, undecodable block): only entries inserted from now on will be known. */
  markLost(reason: string): void {
    if (this.lostReason === null) this.lostReason = reason;
    this.clear();
  }

  /** Entries in the dynamic table (newest first) as [name, value]; names unknown in partial mode are null. For tests. */
  entries(): [string | null, string][] {
    const out: [string | null, string][] = [];
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head - i) & (this.cap - 1);
      out.push([this.names[slot], this.values[slot]]);
    }
    return out;
  }

  /** RFC 7541 size of the dynamic table. */
  tableSize(): number {
    return this.size;
  }

  /** Decodes one complete header block. Throws HpackError (after switching to partial mode) when it is malformed. */
  decode(buf: Buffer, start = 0, end = buf.length): HeaderBlock {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    const out: HeaderBlock = { fields: [], listSize: 0, unknown: 0, dropped: 0 };
    let sawField = false;
    try {
      while (this.pos < this.end) {
        const b = buf[this.pos];
        if (b & 0x80) {
          // Indexed header field (§6.1).
          const index = this.integer(7);
          if (index === 0) throw new HpackError('indexed header field with index 0');
          this.emitIndexed(out, index);
          sawField = true;
        } else if ((b & 0xe0) === 0x20) {
          // Dynamic table size update (§6.3): only before the first field of a block (§4.2).
          if (sawField) throw new HpackError('dynamic table size update after a header field');
          const size = this.integer(5);
          if (size > this.allowedMax) throw new HpackError(`dynamic table size update to ${size} over the limit ${this.allowedMax}`);
          this.maxSize = size;
          this.evictTo(size);
          // An empty table is the same on both ends: the context is known again.
          if (size === 0 && this.lostReason !== null) {
            this.clear();
            this.lostReason = null;
          }
        } else {
          // Literal: with incremental indexing (01, 6-bit index), without indexing (0000) or never indexed (0001), 4-bit index.
          const indexing = (b & 0xc0) === 0x40;
          const nameIndex = this.integer(indexing ? 6 : 4);
          let name: string | null;
          let nameOctets: number;
          if (nameIndex === 0) {
            this.string();
            name = octetsToString(this.strBuf, this.strStart, this.strEnd);
            nameOctets = this.strEnd - this.strStart;
          } else if (nameIndex <= STATIC_COUNT) {
            name = STATIC[nameIndex][0];
            nameOctets = STATIC_NAME_OCTETS[nameIndex];
          } else {
            const slot = this.slotOf(nameIndex);
            if (slot < 0) {
              name = null;
              nameOctets = 0;
            } else {
              name = this.names[slot];
              nameOctets = this.nameOctets[slot];
            }
          }
          this.string();
          const valueOctets = this.strEnd - this.strStart;
          const value = octetsToString(this.strBuf, this.strStart, this.strEnd);
          if (indexing) this.insert(name, value, nameOctets + valueOctets + 32, nameOctets);
          if (name === null) out.unknown++;
          else this.push(out, name, value, nameOctets + valueOctets + 32);
          sawField = true;
        }
      }
    } catch (err) {
      const e = err instanceof HpackError ? err : new HpackError(err instanceof Error ? err.message : String(err));
      this.markLost(e.message);
      throw e;
    } finally {
      // Drop the caller's buffer: it is only valid during the call.
      this.buf = EMPTY;
      this.strBuf = EMPTY;
    }
    return out;
  }

  private push(out: HeaderBlock, name: string, value: string, size: number): void {
    if (out.listSize + size > this.maxListSize) {
      out.dropped++;
      return;
    }
    out.listSize += size;
    out.fields.push(name, value);
  }

  private emitIndexed(out: HeaderBlock, index: number): void {
    if (index <= STATIC_COUNT) {
      const e = STATIC[index];
      this.push(out, e[0], e[1], STATIC_NAME_OCTETS[index] + STATIC_VALUE_OCTETS[index] + 32);
      return;
    }
    const slot = this.slotOf(index);
    if (slot < 0 || this.names[slot] === null) {
      out.unknown++;
      return;
    }
    this.push(out, this.names[slot] as string, this.values[slot], this.sizes[slot]);
  }

  /** Slot of dynamic index (62 = newest); -1 when the entry is unknown in partial mode. Throws when out of range. */
  private slotOf(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i < this.count) return (this.head - i) & (this.cap - 1);
    if (this.lostReason !== null) return -1;
    throw new HpackError(`index ${index} beyond the dynamic table (${this.count} entries)`);
  }

  /** Integer with an N-bit prefix (§5.1); values beyond 2^28 are refused (no legitimate use, and they would overflow sizes). */
  private integer(prefixBits: number): number {
    const buf = this.buf;
    const mask = (1 << prefixBits) - 1;
    let v = buf[this.pos++] & mask;
    if (v < mask) return v;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new HpackError('truncated integer');
      const b = buf[this.pos++];
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 21) throw new HpackError('integer too large');
    }
    if (v > 2 ** 28) throw new HpackError('integer too large');
    return v;
  }

  /** String literal (§5.2): sets strBuf/strStart/strEnd to its octets. */
  private string(): void {
    if (this.pos >= this.end) throw new HpackError('truncated string');
    const huffman = (this.buf[this.pos] & 0x80) !== 0;
    const len = this.integer(7);
    if (len > this.end - this.pos) throw new HpackError(`string of ${len} bytes overruns the block`);
    const start = this.pos;
    this.pos += len;
    if (!huffman) {
      this.strBuf = this.buf;
      this.strStart = start;
      this.strEnd = start + len;
      return;
    }
    const need = huffmanMaxDecodedLength(len);
    if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
    const n = huffmanDecode(this.buf, start, start + len, scratch);
    if (n < 0) throw new HpackError('invalid Huffman-coded string');
    this.strBuf = scratch;
    this.strStart = 0;
    this.strEnd = n;
  }

  private insert(name: string | null, value: string, size: number, nameOctets: number): void {
    if (size > this.maxSize) {
      // An entry larger than the table empties it and is not added (§4.4).
      this.clear();
      return;
    }
    this.evictTo(this.maxSize - size);
    if (this.count === this.cap) this.grow();
    this.head = (this.head + 1) & (this.cap - 1);
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.sizes[this.head] = size;
    this.nameOctets[this.head] = nameOctets;
    this.count++;
    this.size += size;
  }

  private evictTo(target: number): void {
    while (this.size > target && this.count > 0) {
      const slot = (this.head - this.count + 1) & (this.cap - 1);
      this.size -= this.sizes[slot];
      this.names[slot] = null;
      this.values[slot] = '';
      this.count--;
    }
  }

  private clear(): void {
    this.evictTo(0);
    this.size = 0;
  }

  /** Doubles the ring (the table starts small: most connections use a few dozen entries). */
  private grow(): void {
    const cap = this.cap === 0 ? 16 : this.cap * 2;
    const names: (string | null)[] = new Array(cap).fill(null);
    const values: string[] = new Array(cap).fill('');
    const sizes: number[] = new Array(cap).fill(0);
    const nameOctets: number[] = new Array(cap).fill(0);
    // Oldest first into slots 0..count-1, so the newest lands at count-1.
    for (let i = 0; i < this.count; i++) {
      const from = (this.head - this.count + 1 + i) & (this.cap - 1);
      names[i] = this.names[from];
      values[i] = this.values[from];
      sizes[i] = this.sizes[from];
      nameOctets[i] = this.nameOctets[from];
    }
    this.names = names;
    this.values = values;
    this.sizes = sizes;
    this.nameOctets = nameOctets;
    this.cap = cap;
    this.head = this.count - 1;
  }
}
