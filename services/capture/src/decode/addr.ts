/**
 * Addresses out of decoded packets: text for the once-per-flow places
 * (ConnectionInfo), and a direction-independent flow hash for the per-packet
 * flow-table lookup.
 */
import type { DecodedPacket } from '../types.ts';

/** formatAddress was asked to read past the end of the buffer. */
export class AddressRangeError extends RangeError {
  override readonly name = 'AddressRangeError';
}

/**
 * The text of the IPv4 (4 bytes) or IPv6 (16 bytes) address at `offset`.
 * IPv6 follows RFC 5952: lower-case hex without leading zeros, the longest run
 * of two or more zero groups (the first, on a tie) written "::", and
 * IPv4-mapped addresses as ::ffff:a.b.c.d. Allocates the string: call it once
 * per flow, not per packet.
 */
export function formatAddress(buf: Uint8Array, offset: number, version: 4 | 6): string {
  const n = version === 6 ? 16 : 4;
  if (!Number.isInteger(offset) || offset < 0 || offset + n > buf.length) {
    throw new AddressRangeError(`IPv${version} address at offset ${offset} is past the end of a ${buf.length}-byte buffer`);
  }
  if (version !== 6) return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (buf[offset + 2 * i] << 8) | buf[offset + 2 * i + 1];
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${buf[offset + 12]}.${buf[offset + 13]}.${buf[offset + 14]}.${buf[offset + 15]}`;
  }
  let bestStart = -1;
  let bestLen = 1; // a lone zero group is never shortened (RFC 5952 4.2.2)
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${head}::${tail}`;
}

/**
 * A hash of the flow (addresses, ports, protocol, IP version), the same for
 * both directions: each endpoint is hashed on its own and the two are
 * combined smaller first. Equal flows hash equal; the flow table must still
 * compare keys (collisions exist).
 *
 * The result is 30 bits (0 .. 2^30 - 1), not 32: V8 keeps integers of that
 * range unboxed (Smi), so returning one never allocates, even from a call
 * V8 does not inline; a full 32-bit value would be a heap number for 3 of 4
 * flows there. One flat function, for the same reason (helpers returning
 * 32-bit values allocate when they are not inlined).
 */
export function hashFlow(p: DecodedPacket): number {
  const b = p.buf;
  const words = p.ipVersion === 6 ? 4 : p.ipVersion === 4 ? 1 : 0;
  // Reads stay in bounds for a decoded packet; for a hand-made one, missing bytes read as undefined -> 0.
  let s = p.srcAddrOffset;
  let d = p.dstAddrOffset;
  let hs = Math.imul(p.srcPort ^ 0x2545f491, 0x9e3779b1);
  let hd = Math.imul(p.dstPort ^ 0x2545f491, 0x9e3779b1);
  for (let i = 0; i < words; i++, s += 4, d += 4) {
    hs = Math.imul(hs ^ ((b[s] << 24) | (b[s + 1] << 16) | (b[s + 2] << 8) | b[s + 3]), 0x85ebca6b);
    hs ^= hs >>> 13;
    hd = Math.imul(hd ^ ((b[d] << 24) | (b[d + 1] << 16) | (b[d + 2] << 8) | b[d + 3]), 0x85ebca6b);
    hd ^= hd >>> 13;
  }
  hs = Math.imul(hs ^ (hs >>> 16), 0xc2b2ae35);
  hd = Math.imul(hd ^ (hd >>> 16), 0xc2b2ae35);
  let h = hs < hd ? Math.imul(hs, 0x27d4eb2f) ^ hd : Math.imul(hd, 0x27d4eb2f) ^ hs;
  h = Math.imul(h ^ (p.ipVersion << 8) ^ p.protocol, 0x165667b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h & 0x3fffffff;
}
