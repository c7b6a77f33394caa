/**
 * Frame -> DecodedPacket: link layer, IPv4/IPv6 (with fragment reassembly),
 * TCP/UDP headers. The hot path: one call per captured frame, filling the
 * caller's reused DecodedPacket with offsets into the frame; no allocation,
 * no strings, no subarrays, every read bounds-checked by index math, never a
 * throw (bad input is a status).
 *
 * Length rules, so results are the same on every replay:
 *  - Trailing bytes after the IP datagram (Ethernet padding, FCS) are ignored.
 *  - IP lengths beyond the captured bytes: if the frame was snapped
 *    (length > captureLength) the payload is clamped to what was captured
 *    (`truncated` is true); if it was not, the headers lie: MALFORMED.
 *  - Headers cut short by the capture: TRUNCATED; headers that contradict the
 *    lengths around them: MALFORMED.
 *  - IPv4 total length 0 / IPv6 payload length 0 (with a next header other
 *    than No Next Header) is taken as "what was captured": that is how TSO/GSO
 *    super-packets (and BIG TCP) look when captured on the sending host.
 *  - Checksums are not verified: on the capturing host they are often left to
 *    the NIC (offload), so a bad checksum says nothing about the packet.
 *
 * Capture time is not passed down as an argument: a double given to a call
 * V8 does not inline is boxed, one heap number per packet. The fragment path
 * reads it back from out.tsMs.
 */
import { DECODE, LINKTYPE, type DecodeStatus, type DecodedPacket, type Frame } from '../types.ts';
import { BASE_V4, FragmentTable, REASSEMBLED } from './fragments.ts';
import { newDecoderStats, type DecoderStats } from './stats.ts';

export interface DecoderOptions {
  /** VLAN tags (802.1Q/802.1ad/0x9100) accepted in one frame; more is MALFORMED. Default 8. */
  maxVlanTags?: number;
  /** IPv6 extension headers followed in one packet; more is MALFORMED. Default 16. */
  maxExtensionHeaders?: number;
  /** Incomplete datagrams are dropped this long (capture time, ms) after their first fragment. Default 30 000. */
  fragmentTimeoutMs?: number;
  /** Incomplete datagrams held at once; the oldest is evicted for a new one. Default 1024. */
  maxDatagramsInFlight?: number;
  /** Bytes of reassembly buffers held at once (at least 64 KiB + 60). Default 16 MiB. */
  maxFragmentBytes?: number;
}

/** A DecoderOptions value out of range. */
export class DecoderOptionsError extends Error {
  override readonly name = 'DecoderOptionsError';
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;
const ETH_QINQ_OLD = 0x9100;

function intOption(value: number | undefined, fallback: number, min: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) throw new DecoderOptionsError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

export class Decoder {
  /** Live counters (see DecoderStats). */
  readonly stats: DecoderStats = newDecoderStats();
  private readonly maxVlanTags: number;
  private readonly maxExtensionHeaders: number;
  private readonly frags: FragmentTable;

  constructor(options: DecoderOptions = {}) {
    this.maxVlanTags = intOption(options.maxVlanTags, 8, 0, 'maxVlanTags');
    this.maxExtensionHeaders = intOption(options.maxExtensionHeaders, 16, 1, 'maxExtensionHeaders');
    const timeoutMs = options.fragmentTimeoutMs ?? 30_000;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new DecoderOptionsError(`fragmentTimeoutMs must be a positive number, got ${String(timeoutMs)}`);
    this.frags = new FragmentTable(
      {
        timeoutMs,
        maxDatagrams: intOption(options.maxDatagramsInFlight, 1024, 1, 'maxDatagramsInFlight'),
        maxBytes: intOption(options.maxFragmentBytes, 16 * 1024 * 1024, 65535 + BASE_V4, 'maxFragmentBytes'),
      },
      this.stats,
    );
  }

  /**
   * Decodes one frame into `out` (every field rewritten). With OK, `out.buf`
   * holds the IP packet — the frame's data, or a reassembled datagram owned by
   * the decoder, valid until the next decode() — and the payload is
   * `out.buf[payloadOffset, payloadOffset + payloadLength)`. For other
   * statuses the fields that could be read are filled, offsets stay in bounds.
   */
  decode(frame: Frame, out: DecodedPacket): DecodeStatus {
    const status = this.decodeFrame(frame, out);
    const s = this.stats;
    s.frames++;
    const cl = frame.captureLength;
    s.bytes += cl >= 0 && cl < frame.data.length ? cl : frame.data.length;
    switch (status) {
      case DECODE.OK:
        s.ok++;
        s.payloadBytes += out.payloadLength;
        break;
      case DECODE.NOT_IP:
        s.notIp++;
        break;
      case DECODE.OTHER_PROTOCOL:
        s.otherProtocol++;
        break;
      case DECODE.FRAGMENT_HELD:
        s.fragmentHeld++;
        break;
      case DECODE.TRUNCATED:
        s.truncated++;
        break;
      case DECODE.MALFORMED:
        s.malformed++;
        break;
      default:
        s.unsupportedLink++;
    }
    return status;
  }

  /** Expires fragment state older than the timeout at capture time `nowMs`; returns how many datagrams expired. */
  tick(nowMs: number): number {
    return this.frags.expire(nowMs);
  }

  /** Drops all fragment state (end of capture); returns how many incomplete datagrams were dropped (counted as expired). */
  flush(): number {
    return this.frags.clear();
  }

  private decodeFrame(frame: Frame, out: DecodedPacket): DecodeStatus {
    const b = frame.data;
    let end = b.length;
    const cl = frame.captureLength;
    if (cl >= 0 && cl < end) end = cl | 0; // a reused, larger buffer: only captureLength bytes are this frame
    const snapped = frame.length > end;
    out.tsMs = frame.tsMs;
    out.captureLength = frame.captureLength;
    out.length = frame.length;
    out.truncated = snapped;
    out.fragmented = false;
    out.ipVersion = 0;
    out.protocol = 0;
    out.buf = b;
    out.srcAddrOffset = 0;
    out.dstAddrOffset = 0;
    out.srcPort = 0;
    out.dstPort = 0;
    out.tcpSeq = 0;
    out.tcpAck = 0;
    out.tcpFlags = 0;
    out.tcpWindow = 0;
    out.payloadOffset = 0;
    out.payloadLength = 0;

    let off: number;
    let etype: number;
    switch (frame.linkType) {
      case LINKTYPE.ETHERNET:
        if (end < 14) return DECODE.TRUNCATED;
        etype = (b[12] << 8) | b[13];
        off = 14;
        break;
      case LINKTYPE.LINUX_SLL:
        if (end < 16) return DECODE.TRUNCATED;
        etype = (b[14] << 8) | b[15];
        off = 16;
        break;
      case LINKTYPE.LINUX_SLL2:
        if (end < 20) return DECODE.TRUNCATED;
        etype = (b[0] << 8) | b[1];
        off = 20;
        break;
      case LINKTYPE.RAW:
      case LINKTYPE.RAW_12:
      case LINKTYPE.RAW_14:
      case LINKTYPE.IPV4:
      case LINKTYPE.IPV6:
        return this.rawIp(b, 0, end, snapped, out);
      case LINKTYPE.NULL: {
        if (end < 4) return DECODE.TRUNCATED;
        // Written in the capturing host's byte order, which the file does not say: try both.
        let fam = b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24);
        if (fam !== 2 && fam !== 24 && fam !== 28 && fam !== 30) fam = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
        return this.family(fam, b, end, snapped, out);
      }
      case LINKTYPE.LOOP:
        if (end < 4) return DECODE.TRUNCATED;
        return this.family((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3], b, end, snapped, out);
      default:
        return DECODE.UNSUPPORTED_LINK;
    }
    // Ethernet-typed links: VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, pre-standard QinQ 0x9100), any depth up to the limit.
    for (let tags = 0; etype === ETH_VLAN || etype === ETH_QINQ || etype === ETH_QINQ_OLD; tags++) {
      if (tags >= this.maxVlanTags) return DECODE.MALFORMED;
      if (off + 4 > end) return DECODE.TRUNCATED;
      etype = (b[off + 2] << 8) | b[off + 3];
      off += 4;
    }
    if (etype === ETH_IPV4) return this.ipv4(b, off, end, snapped, out);
    if (etype === ETH_IPV6) return this.ipv6(b, off, end, snapped, out);
    return DECODE.NOT_IP;
  }

  /** BSD loopback: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD) or 30 (macOS). */
  private family(fam: number, b: Buffer, end: number, snapped: boolean, out: DecodedPacket): DecodeStatus {
    if (fam === 2) return this.ipv4(b, 4, end, snapped, out);
    if (fam === 24 || fam === 28 || fam === 30) return this.ipv6(b, 4, end, snapped, out);
    return DECODE.NOT_IP;
  }

  private rawIp(b: Buffer, off: number, end: number, snapped: boolean, out: DecodedPacket): DecodeStatus {
    if (end <= off) return DECODE.TRUNCATED;
    const v = b[off] >> 4;
    if (v === 4) return this.ipv4(b, off, end, snapped, out);
    if (v === 6) return this.ipv6(b, off, end, snapped, out);
    return DECODE.MALFORMED;
  }

  private ipv4(b: Buffer, ip: number, end: number, snapped: boolean, out: DecodedPacket): DecodeStatus {
    if (ip + 20 > end) return DECODE.TRUNCATED;
    const vihl = b[ip];
    if (vihl >> 4 !== 4) return DECODE.MALFORMED;
    const hl = (vihl & 15) << 2;
    if (hl < 20) return DECODE.MALFORMED;
    const avail = end - ip;
    let total = (b[ip + 2] << 8) | b[ip + 3];
    if (total === 0) total = avail; // TSO super-packet (see the file comment)
    if (total < hl) return DECODE.MALFORMED;
    if (hl > avail) return DECODE.TRUNCATED;
    out.ipVersion = 4;
    out.protocol = b[ip + 9];
    out.srcAddrOffset = ip + 12;
    out.dstAddrOffset = ip + 16;
    if (total > avail && !snapped) return DECODE.MALFORMED;
    const fo = (b[ip + 6] << 8) | b[ip + 7];
    if ((fo & 0x3fff) !== 0) {
      // MF set or a non-zero offset: a fragment. DF and the reserved bit do not matter here.
      out.fragmented = true;
      this.stats.fragments++;
      if (total > avail) {
        this.stats.fragmentsDropped++; // bytes missing: it can never complete a datagram correctly
        return DECODE.TRUNCATED;
      }
      const r = this.frags.addV4(b, ip, hl, total - hl, (fo & 0x1fff) << 3, (fo & 0x2000) !== 0, out.tsMs);
      if (r !== REASSEMBLED) return r as DecodeStatus;
      const f = this.frags;
      out.buf = f.doneBuf;
      out.srcAddrOffset = f.doneHeaderOffset + 12;
      out.dstAddrOffset = f.doneHeaderOffset + 16;
      return this.transport(f.doneBuf, f.doneDataOffset, f.doneDataEnd, f.doneDataEnd, out);
    }
    return this.transport(b, ip + hl, ip + total, end, out);
  }

  private ipv6(b: Buffer, ip: number, end: number, snapped: boolean, out: DecodedPacket): DecodeStatus {
    if (ip + 40 > end) return DECODE.TRUNCATED;
    if (b[ip] >> 4 !== 6) return DECODE.MALFORMED;
    const nh = b[ip + 6];
    const avail = end - ip - 40;
    let plen = (b[ip + 4] << 8) | b[ip + 5];
    if (plen === 0 && nh !== 59) plen = avail; // GSO / BIG TCP (see the file comment); jumbograms are not supported
    out.ipVersion = 6;
    out.srcAddrOffset = ip + 8;
    out.dstAddrOffset = ip + 24;
    if (plen > avail && !snapped) return DECODE.MALFORMED;
    return this.ipv6Chain(b, ip, ip + 40, nh, ip + 40 + plen, end, false, out);
  }

  /**
   * Follows IPv6 extension headers from `off` (next header `nh`) to the
   * transport. `dend` is where the packet ends by its length field, `end` where
   * the captured bytes end.
   */
  private ipv6Chain(b: Buffer, ip: number, off: number, nh: number, dend: number, end: number, reassembled: boolean, out: DecodedPacket): DecodeStatus {
    const cend = dend < end ? dend : end;
    for (let i = 0; i < this.maxExtensionHeaders; i++) {
      switch (nh) {
        case 6:
        case 17:
          out.protocol = nh;
          return this.transport(b, off, dend, end, out);
        case 0: // hop-by-hop options
        case 43: // routing
        case 60: // destination options
        case 51: {
          // AH counts 4-byte words minus 2; the others 8-byte words minus 1.
          if (off + 8 > dend) return DECODE.MALFORMED;
          if (off + 8 > cend) return DECODE.TRUNCATED;
          const len = nh === 51 ? (b[off + 1] + 2) << 2 : (b[off + 1] + 1) << 3;
          if (off + len > dend) return DECODE.MALFORMED;
          if (off + len > cend) return DECODE.TRUNCATED;
          nh = b[off];
          off += len;
          continue;
        }
        case 44: {
          if (off + 8 > dend) return DECODE.MALFORMED;
          if (off + 8 > cend) return DECODE.TRUNCATED;
          out.fragmented = true;
          const fo = (b[off + 2] << 8) | b[off + 3];
          if ((fo & 0xfff9) === 0) {
            // Atomic fragment (offset 0, no more fragments; RFC 6946): nothing to reassemble.
            nh = b[off];
            off += 8;
            continue;
          }
          if (reassembled) return DECODE.MALFORMED; // a fragment inside a reassembled packet
          out.protocol = b[off];
          this.stats.fragments++;
          if (dend > end) {
            this.stats.fragmentsDropped++;
            return DECODE.TRUNCATED;
          }
          const r = this.frags.addV6(b, ip, off, dend - off - 8, out.tsMs);
          if (r !== REASSEMBLED) return r as DecodeStatus;
          const f = this.frags;
          out.buf = f.doneBuf;
          out.srcAddrOffset = 8;
          out.dstAddrOffset = 24;
          return this.ipv6Chain(f.doneBuf, 0, f.doneDataOffset, f.doneNextHeader, f.doneDataEnd, f.doneDataEnd, true, out);
        }
        default:
          // ESP (50), No Next Header (59), ICMPv6 (58), ...: not a transport we read.
          out.protocol = nh;
          out.payloadOffset = off;
          out.payloadLength = cend - off;
          return DECODE.OTHER_PROTOCOL;
      }
    }
    return DECODE.MALFORMED;
  }

  /**
   * TCP/UDP header at `t`; the IP payload ends at `dend` by its length field
   * and the captured bytes at `end`.
   */
  private transport(b: Buffer, t: number, dend: number, end: number, out: DecodedPacket): DecodeStatus {
    const cend = dend < end ? dend : end;
    const proto = out.protocol;
    if (proto === 6) {
      if (t + 20 > dend) return DECODE.MALFORMED;
      if (t + 20 > cend) return DECODE.TRUNCATED;
      const doff = (b[t + 12] >> 4) << 2;
      if (doff < 20 || t + doff > dend) return DECODE.MALFORMED;
      if (t + doff > cend) return DECODE.TRUNCATED;
      out.srcPort = (b[t] << 8) | b[t + 1];
      out.dstPort = (b[t + 2] << 8) | b[t + 3];
      out.tcpSeq = ((b[t + 4] << 24) | (b[t + 5] << 16) | (b[t + 6] << 8) | b[t + 7]) >>> 0;
      out.tcpAck = ((b[t + 8] << 24) | (b[t + 9] << 16) | (b[t + 10] << 8) | b[t + 11]) >>> 0;
      out.tcpFlags = b[t + 13];
      out.tcpWindow = (b[t + 14] << 8) | b[t + 15];
      out.payloadOffset = t + doff;
      out.payloadLength = cend - t - doff;
      return DECODE.OK;
    }
    if (proto === 17) {
      if (t + 8 > dend) return DECODE.MALFORMED;
      if (t + 8 > cend) return DECODE.TRUNCATED;
      const ulen = (b[t + 4] << 8) | b[t + 5];
      if (ulen < 8 || t + ulen > dend) return DECODE.MALFORMED;
      out.srcPort = (b[t] << 8) | b[t + 1];
      out.dstPort = (b[t + 2] << 8) | b[t + 3];
      const uend = t + ulen;
      out.payloadOffset = t + 8;
      out.payloadLength = (uend < cend ? uend : cend) - t - 8;
      return DECODE.OK;
    }
    out.payloadOffset = t;
    out.payloadLength = cend - t;
    return DECODE.OTHER_PROTOCOL;
  }
}
