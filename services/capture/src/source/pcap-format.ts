/**
 * File-format constants and timestamp arithmetic shared by the capture-file
 * reader, the pcap writer and the stream ring (internal to source/).
 */

/** Classic pcap magics as read big-endian from the first 4 bytes. */
export const PCAP_MAGIC_US_BE = 0xa1b2c3d4;
export const PCAP_MAGIC_US_LE = 0xd4c3b2a1;
export const PCAP_MAGIC_NS_BE = 0xa1b23c4d;
export const PCAP_MAGIC_NS_LE = 0x4d3cb2a1;
/** Kuznetzov's "modified pcap": a different record header size, not supported. */
export const PCAP_MAGIC_KUZNETZOV_BE = 0xa1b2cd34;
export const PCAP_MAGIC_KUZNETZOV_LE = 0x34cdb2a1;
/** pcapng Section Header Block type: a palindrome, so it reads the same in either byte order. */
export const PCAPNG_SHB = 0x0a0d0d0a;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const PCAP_HEADER_BYTES = 24;
export const PCAP_RECORD_HEADER_BYTES = 16;
/** libpcap's default snap length; what the writers use unless told otherwise. */
export const DEFAULT_SNAPLEN = 262_144;
/** Largest record/block accepted: anything above is a corrupt length, not a packet. */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

/**
 * Capture time in ms from whole seconds plus `sub` units of 1/unitsPerSec s.
 * The integer milliseconds are exact (below 2^53), so the only rounding that
 * matters is the final addition of the sub-millisecond fraction: the result
 * is the double nearest to the exact time (for unitsPerSec <= 2^36 and
 * sub < 2^37, which keeps sub * 1000 exact).
 */
export function tsToMs(sec: number, sub: number, unitsPerSec: number): number {
  const subMs = sub * 1000;
  let msInt = Math.floor(subMs / unitsPerSec);
  let rest = subMs - msInt * unitsPerSec;
  // The division is rounded, so floor() may be one off near an integer.
  if (rest < 0) {
    msInt--;
    rest += unitsPerSec;
  } else if (rest >= unitsPerSec) {
    msInt++;
    rest -= unitsPerSec;
  }
  return sec * 1000 + msInt + rest / unitsPerSec;
}

/** Quotient and remainder of the last `div64` call (module scratch: no allocation per packet). */
export const div64Result = { q: 0, r: 0 };

/**
 * (hi * 2^32 + lo) / d for d <= 2^36, exactly, without BigInt: long
 * division in 16-bit digits keeps every intermediate below 2^53. The
 * quotient is exact while below 2^53 (any sane timestamp).
 */
export function div64(hi: number, lo: number, d: number): void {
  if (hi < 0x200000) {
    // Below 2^53: one exact double.
    const t = hi * 4294967296 + lo;
    let q = Math.floor(t / d);
    let r = t - q * d;
    if (r < 0) {
      q--;
      r += d;
    } else if (r >= d) {
      q++;
      r -= d;
    }
    div64Result.q = q;
    div64Result.r = r;
    return;
  }
  let q = 0;
  let r = 0;
  for (let i = 0; i < 4; i++) {
    const digit = i === 0 ? hi >>> 16 : i === 1 ? hi & 0xffff : i === 2 ? lo >>> 16 : lo & 0xffff;
    const cur = r * 65536 + digit;
    let qd = Math.floor(cur / d);
    r = cur - qd * d;
    if (r < 0) {
      qd--;
      r += d;
    } else if (r >= d) {
      qd++;
      r -= d;
    }
    q = q * 65536 + qd;
  }
  div64Result.q = q;
  div64Result.r = r;
}

/** Result of `msToSecSub` (module scratch). */
export const secSubResult = { sec: 0, sub: 0 };

/**
 * Splits ms since the epoch into whole seconds and sub-second units for a
 * pcap record (rounded to the nearest unit). Clamped to the u32 range of
 * the classic pcap seconds field.
 */
export function msToSecSub(tsMs: number, unitsPerSec: number): void {
  if (!(tsMs >= 0)) {
    secSubResult.sec = 0;
    secSubResult.sub = 0;
    return;
  }
  let sec = Math.floor(tsMs / 1000);
  // Exact: both are doubles of the same magnitude and the difference is a multiple of tsMs's ulp.
  let restMs = tsMs - sec * 1000;
  if (restMs < 0) {
    sec--;
    restMs += 1000;
  } else if (restMs >= 1000) {
    sec++;
    restMs -= 1000;
  }
  let sub = Math.round(restMs * (unitsPerSec / 1000));
  if (sub >= unitsPerSec) {
    sec++;
    sub -= unitsPerSec;
  }
  if (sec > 0xffffffff) {
    sec = 0xffffffff;
    sub = unitsPerSec - 1;
  }
  secSubResult.sec = sec;
  secSubResult.sub = sub;
}

/** Writes a classic pcap file header (native little-endian). */
export function writePcapHeader(out: Buffer, at: number, nanos: boolean, snaplen: number, linkType: number): void {
  out.writeUInt32LE(nanos ? PCAP_MAGIC_NS_BE : PCAP_MAGIC_US_BE, at);
  out.writeUInt16LE(2, at + 4);
  out.writeUInt16LE(4, at + 6);
  out.writeInt32LE(0, at + 8);
  out.writeUInt32LE(0, at + 12);
  out.writeUInt32LE(snaplen, at + 16);
  out.writeUInt32LE(linkType, at + 20);
}
