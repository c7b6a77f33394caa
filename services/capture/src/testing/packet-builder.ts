/**
 * Builds capture frames for tests: every link type the decoder reads, IPv4
 * (options, fragments) and IPv6 (extension headers, fragments), TCP and UDP
 * with correct lengths and checksums. Allocation is free here: this is test
 * code, the decoder's hot path is elsewhere.
 *
 * Layers can be built together or one by one:
 *
 *   buildFrame({ link: 'ethernet', vlan: [10], ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' },
 *                tcp: { srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: 'S' } })
 *
 *   const ip = buildIp({ ip: {...}, udp: {...} });           // the IP datagram alone
 *   fragmentIpv4(ip, 512, 'reverse').map((f) => wrapLink(f, { link: 'sll' }))
 *   frameOf(bytes, tsMs, linkTypeOf('sll'))                   // a Frame for Decoder.decode
 */
import { LINKTYPE, type Frame } from '../types.ts';

/** A spec the builder cannot honour (bad address, two transports, sizes out of range). */
export class PacketBuilderError extends Error {
  override readonly name = 'PacketBuilderError';
}

export type LinkKind = 'ethernet' | 'sll' | 'sll2' | 'null' | 'loop' | 'raw';

export interface IpSpec {
  version: 4 | 6;
  /** Dotted IPv4 or any RFC 4291 IPv6 text (with '::' and embedded IPv4). */
  src: string;
  dst: string;
  /** IPv4 identification (16 bits), or the IPv6 fragment id (32 bits) used by fragmentIpv6. Default 0x1234. */
  id?: number;
  /** TTL / hop limit, default 64. */
  ttl?: number;
  /** IPv4 TOS / IPv6 traffic class. */
  tos?: number;
  /** IPv4 DF bit. */
  dontFragment?: boolean;
  /** IPv4 options (raw bytes), padded with EOL to a multiple of 4; at most 40 bytes. */
  options?: Uint8Array;
  /** IPv6 extension headers, in order, between the fixed header and the transport. */
  extensions?: Ipv6Extension[];
  flowLabel?: number;
  /** Overrides the IPv4 total length / IPv6 payload length field (to build malformed packets). */
  lengthField?: number;
}

export interface Ipv6Extension {
  type: 'hopByHop' | 'routing' | 'destination' | 'ah';
  /**
   * Total bytes of this header, a multiple of 8. Options headers (default 8) are
   * filled with PadN; routing is a Segment Routing header with no segments left
   * (8 + 16n, default 24); AH (default 16) has a zero ICV.
   */
  length?: number;
}

/** Letters as tcpdump prints them (F S R P A U E C; '.' also means ACK), or the flags byte. */
export type TcpFlagsSpec = string | number;

export interface TcpSpec {
  srcPort: number;
  dstPort: number;
  seq?: number;
  ack?: number;
  /** Default 'A'. */
  flags?: TcpFlagsSpec;
  /** Default 65535. */
  window?: number;
  urgent?: number;
  /** Raw TCP options, padded with EOL to a multiple of 4; at most 40 bytes. */
  options?: Uint8Array;
  payload?: Uint8Array | string;
}

export interface UdpSpec {
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array | string;
  /** Overrides the UDP length field (to build malformed packets). */
  lengthField?: number;
}

export interface PacketSpec {
  ip: IpSpec;
  tcp?: TcpSpec;
  udp?: UdpSpec;
  /** Any other IP protocol (ICMP 1, ICMPv6 58, ...): the bytes after the IP headers. */
  other?: { protocol: number; payload?: Uint8Array };
}

export interface LinkSpec {
  link: LinkKind;
  /** VLAN ids, outermost first (Ethernet, SLL, SLL2). One tag uses TPID 0x8100; with more, outer tags use 0x88a8 (QinQ). */
  vlan?: number[];
  /** TPIDs for the tags above, outermost first (e.g. [0x9100, 0x8100]). */
  vlanTpids?: number[];
  /** Overrides the EtherType / SLL protocol (e.g. 0x0806 for a non-IP frame). */
  ethertype?: number;
  /** NULL/LOOP address family; default AF_INET 2, or AF_INET6 30 (NULL, macOS) / 24 (LOOP, OpenBSD). */
  family?: number;
  /** NULL only: byte order of the family field, default 'le' (the capturing host's). */
  nullByteOrder?: 'le' | 'be';
  /** Ethernet: pad the frame to the 60-byte minimum, as a receiving NIC hands it over. */
  pad?: boolean;
  srcMac?: string;
  dstMac?: string;
  /** SLL/SLL2 packet type: 0 to us, 4 outgoing (default 0). */
  sllPacketType?: number;
}

export type FrameSpec = PacketSpec & LinkSpec;

/** A fragment to cut from a datagram's fragmentable part: byte offset (multiple of 8) and length. */
export interface FragmentPiece {
  offset: number;
  length: number;
  /** Bytes to carry instead of the datagram's own (to build conflicting overlaps). */
  data?: Uint8Array;
  /** More-fragments flag; default: set unless the piece reaches the end of the datagram. */
  more?: boolean;
}

/** Order the fragments are returned in: as cut, reversed, or by index (indices may repeat: duplicates). */
export type FragmentOrder = 'forward' | 'reverse' | readonly number[];

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;

/** The LINKTYPE_* value a frame built with `link` is captured under (raw: LINKTYPE_RAW 101). */
export function linkTypeOf(link: LinkKind): number {
  switch (link) {
    case 'ethernet':
      return LINKTYPE.ETHERNET;
    case 'sll':
      return LINKTYPE.LINUX_SLL;
    case 'sll2':
      return LINKTYPE.LINUX_SLL2;
    case 'null':
      return LINKTYPE.NULL;
    case 'loop':
      return LINKTYPE.LOOP;
    case 'raw':
      return LINKTYPE.RAW;
  }
}

/** A Frame as a capture source hands it to the decoder; `length` > data.length means snapped. */
export function frameOf(data: Buffer, tsMs: number, linkType: number, length: number = data.length): Frame {
  return { tsMs, captureLength: data.length, length, linkType, interfaceId: 0, data };
}

/** IPv4 dotted quad or IPv6 text to its 4 or 16 bytes. */
export function parseIp(text: string, version: 4 | 6): Buffer {
  const out = version === 4 ? parseIpv4(text) : parseIpv6(text);
  if (out === null) throw new PacketBuilderError(`not an IPv${version} address: ${JSON.stringify(text)}`);
  return out;
}

function parseIpv4(text: string): Buffer | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]) || Number(parts[i]) > 255) return null;
    out[i] = Number(parts[i]);
  }
  return out;
}

function parseIpv6(text: string): Buffer | null {
  let s = text;
  if (s.includes('.')) {
    // Embedded IPv4 (::ffff:1.2.3.4): rewrite the dotted tail as two hex groups.
    const at = s.lastIndexOf(':');
    const v4 = parseIpv4(s.slice(at + 1));
    if (at < 0 || v4 === null) return null;
    s = `${s.slice(0, at + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]);
  const tail = halves.length === 2 ? parseGroups(halves[1]) : [];
  if (head === null || tail === null) return null;
  let groups = [...head, ...tail];
  if (halves.length === 2) {
    const zeros = 8 - groups.length;
    if (zeros < 1) return null;
    groups = [...head, ...new Array<number>(zeros).fill(0), ...tail];
  }
  if (groups.length !== 8) return null;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** The TCP flags byte for letters like 'SA', 'PA', 'FA' (F S R P A U E C; '.' = A). */
export function tcpFlags(spec: TcpFlagsSpec): number {
  if (typeof spec === 'number') return spec & 0xff;
  const bits: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, '.': 0x10, U: 0x20, E: 0x40, C: 0x80 };
  let v = 0;
  for (const c of spec.toUpperCase()) {
    const b = bits[c];
    if (b === undefined) throw new PacketBuilderError(`unknown TCP flag ${JSON.stringify(c)} in ${JSON.stringify(spec)}`);
    v |= b;
  }
  return v;
}

/** Internet checksum (RFC 1071) of `parts`, concatenated, with an optional starting sum. */
export function internetChecksum(parts: readonly Uint8Array[], initial = 0): number {
  let sum = initial;
  let odd = -1; // a byte left over from a part of odd length, joined with the next part's first byte
  for (const p of parts) {
    let i = 0;
    if (odd >= 0 && p.length > 0) {
      sum += (odd << 8) | p[0];
      i = 1;
      odd = -1;
    }
    for (; i + 1 < p.length; i += 2) sum += (p[i] << 8) | p[i + 1];
    if (i < p.length) odd = p[i];
  }
  if (odd >= 0) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

function bytesOf(p: Uint8Array | string | undefined): Buffer {
  if (p === undefined) return Buffer.alloc(0);
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
}

function padTo4(opts: Uint8Array | undefined, what: string): Buffer {
  if (opts === undefined || opts.length === 0) return Buffer.alloc(0);
  const len = (opts.length + 3) & ~3;
  if (len > 40) throw new PacketBuilderError(`${what} options longer than 40 bytes (${opts.length})`);
  const out = Buffer.alloc(len); // zero padding = End of Option List
  out.set(opts);
  return out;
}

function checkPort(p: number, what: string): void {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new PacketBuilderError(`${what} out of range: ${p}`);
}

function pseudoHeader(version: 4 | 6, src: Buffer, dst: Buffer, protocol: number, length: number): Buffer {
  if (version === 4) {
    const h = Buffer.alloc(12);
    src.copy(h, 0);
    dst.copy(h, 4);
    h[9] = protocol;
    h.writeUInt16BE(length, 10);
    return h;
  }
  const h = Buffer.alloc(40);
  src.copy(h, 0);
  dst.copy(h, 16);
  h.writeUInt32BE(length, 32);
  h[39] = protocol;
  return h;
}

function buildTransport(spec: PacketSpec, src: Buffer, dst: Buffer): { protocol: number; bytes: Buffer } {
  const n = (spec.tcp ? 1 : 0) + (spec.udp ? 1 : 0) + (spec.other ? 1 : 0);
  if (n !== 1) throw new PacketBuilderError('exactly one of tcp, udp, other is required');
  const v = spec.ip.version;
  if (spec.tcp) {
    const t = spec.tcp;
    checkPort(t.srcPort, 'tcp.srcPort');
    checkPort(t.dstPort, 'tcp.dstPort');
    const opts = padTo4(t.options, 'TCP');
    const payload = bytesOf(t.payload);
    const hl = 20 + opts.length;
    const seg = Buffer.alloc(hl + payload.length);
    seg.writeUInt16BE(t.srcPort, 0);
    seg.writeUInt16BE(t.dstPort, 2);
    seg.writeUInt32BE((t.seq ?? 0) >>> 0, 4);
    seg.writeUInt32BE((t.ack ?? 0) >>> 0, 8);
    seg[12] = (hl / 4) << 4;
    seg[13] = tcpFlags(t.flags ?? 'A');
    seg.writeUInt16BE(t.window ?? 65535, 14);
    seg.writeUInt16BE(t.urgent ?? 0, 18);
    opts.copy(seg, 20);
    payload.copy(seg, hl);
    seg.writeUInt16BE(internetChecksum([pseudoHeader(v, src, dst, 6, seg.length), seg]), 16);
    return { protocol: 6, bytes: seg };
  }
  if (spec.udp) {
    const u = spec.udp;
    checkPort(u.srcPort, 'udp.srcPort');
    checkPort(u.dstPort, 'udp.dstPort');
    const payload = bytesOf(u.payload);
    const dg = Buffer.alloc(8 + payload.length);
    if (dg.length > 0xffff) throw new PacketBuilderError(`UDP datagram too long: ${dg.length}`);
    dg.writeUInt16BE(u.srcPort, 0);
    dg.writeUInt16BE(u.dstPort, 2);
    dg.writeUInt16BE(u.lengthField ?? dg.length, 4);
    payload.copy(dg, 8);
    let sum = internetChecksum([pseudoHeader(v, src, dst, 17, dg.length), dg]);
    if (sum === 0) sum = 0xffff; // 0 means "no checksum" in UDP
    dg.writeUInt16BE(sum, 6);
    return { protocol: 17, bytes: dg };
  }
  const o = spec.other!;
  return { protocol: o.protocol, bytes: bytesOf(o.payload) };
}

const EXT_CODE = { hopByHop: 0, routing: 43, destination: 60, ah: 51 } as const;

function buildExtension(ext: Ipv6Extension, next: number, dst: Buffer): Buffer {
  const len = ext.length ?? (ext.type === 'ah' ? 16 : ext.type === 'routing' ? 24 : 8);
  if (len < 8 || len % 8 !== 0 || len > 2048) throw new PacketBuilderError(`IPv6 ${ext.type} header length must be a multiple of 8 in 8..2048: ${len}`);
  const h = Buffer.alloc(len);
  h[0] = next;
  if (ext.type === 'ah') {
    if (len < 16) throw new PacketBuilderError('AH is at least 16 bytes in IPv6 (12, padded to 8-byte alignment)');
    h[1] = len / 4 - 2; // AH counts 4-byte words, minus 2
    h.writeUInt32BE(0x100, 4); // SPI
    h.writeUInt32BE(1, 8); // sequence number; the ICV stays zero
    return h;
  }
  h[1] = len / 8 - 1;
  if (ext.type === 'routing') {
    // A Segment Routing header (RFC 8754) already at its last segment (the packet's destination).
    if ((len - 8) % 16 !== 0 || len < 24) throw new PacketBuilderError(`IPv6 routing header length must be 8 + 16n (n >= 1): ${len}`);
    const segments = (len - 8) / 16;
    h[2] = 4; // routing type: SRH
    h[3] = 0; // segments left
    h[4] = segments - 1; // last entry
    for (let i = 0; i < segments; i++) dst.copy(h, 8 + 16 * i);
    return h;
  }
  // Options area (len - 2 bytes) filled with one PadN option.
  h[2] = 1;
  h[3] = len - 4;
  return h;
}

/** The IP datagram (header(s) + transport) described by `spec`, checksums filled. */
export function buildIp(spec: PacketSpec): Buffer {
  const ip = spec.ip;
  if (ip.version !== 4 && ip.version !== 6) throw new PacketBuilderError(`ip.version must be 4 or 6: ${String(ip.version)}`);
  const src = parseIp(ip.src, ip.version);
  const dst = parseIp(ip.dst, ip.version);
  const { protocol, bytes } = buildTransport(spec, src, dst);
  if (ip.version === 4) {
    if (ip.extensions?.length) throw new PacketBuilderError('extension headers are IPv6 only');
    const opts = padTo4(ip.options, 'IPv4');
    const hl = 20 + opts.length;
    const total = hl + bytes.length;
    if (total > 0xffff) throw new PacketBuilderError(`IPv4 datagram too long: ${total}`);
    const d = Buffer.alloc(total);
    d[0] = 0x40 | (hl / 4);
    d[1] = ip.tos ?? 0;
    d.writeUInt16BE(ip.lengthField ?? total, 2);
    d.writeUInt16BE((ip.id ?? 0x1234) & 0xffff, 4);
    d.writeUInt16BE(ip.dontFragment ? 0x4000 : 0, 6);
    d[8] = ip.ttl ?? 64;
    d[9] = protocol;
    src.copy(d, 12);
    dst.copy(d, 16);
    opts.copy(d, 20);
    d.writeUInt16BE(internetChecksum([d.subarray(0, hl)]), 10);
    bytes.copy(d, hl);
    return d;
  }
  if (ip.options?.length) throw new PacketBuilderError('ip.options is IPv4 only (use extensions for IPv6)');
  const exts = ip.extensions ?? [];
  const built: Buffer[] = [];
  for (let i = exts.length - 1; i >= 0; i--) {
    const next = i === exts.length - 1 ? protocol : EXT_CODE[exts[i + 1].type];
    built.unshift(buildExtension(exts[i], next, dst));
  }
  const payloadLen = built.reduce((n, b) => n + b.length, 0) + bytes.length;
  if (payloadLen > 0xffff) throw new PacketBuilderError(`IPv6 payload too long: ${payloadLen}`);
  const h = Buffer.alloc(40);
  h.writeUInt32BE(((6 << 28) | ((ip.tos ?? 0) << 20) | ((ip.flowLabel ?? 0) & 0xfffff)) >>> 0, 0);
  h.writeUInt16BE(ip.lengthField ?? payloadLen, 4);
  h[6] = exts.length > 0 ? EXT_CODE[exts[0].type] : protocol;
  h[7] = ip.ttl ?? 64;
  src.copy(h, 8);
  dst.copy(h, 24);
  return Buffer.concat([h, ...built, bytes]);
}

function parseMac(text: string | undefined, fallback: number[]): Buffer {
  if (text === undefined) return Buffer.from(fallback);
  const parts = text.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) throw new PacketBuilderError(`not a MAC address: ${JSON.stringify(text)}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function vlanTags(spec: LinkSpec, inner: number): Buffer {
  const ids = spec.vlan ?? [];
  if (ids.length === 0) return Buffer.alloc(0);
  if (spec.link !== 'ethernet' && spec.link !== 'sll' && spec.link !== 'sll2') throw new PacketBuilderError(`VLAN tags need an Ethernet-typed link, not ${spec.link}`);
  const tags = Buffer.alloc(ids.length * 4);
  // Tag i: TCI at 4i, then the EtherType of what follows (the next tag's TPID or the inner protocol).
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id > 0xfff) throw new PacketBuilderError(`VLAN id out of range: ${id}`);
    tags.writeUInt16BE(id, i * 4);
    tags.writeUInt16BE(i + 1 < ids.length ? tpidOf(spec, i + 1) : inner, i * 4 + 2);
  });
  return tags;
}

function tpidOf(spec: LinkSpec, i: number): number {
  const n = spec.vlan!.length;
  return spec.vlanTpids?.[i] ?? (n > 1 && i < n - 1 ? 0x88a8 : 0x8100);
}

/** Puts an IP datagram in a link-layer frame (`version` defaults to the datagram's first nibble). */
export function wrapLink(ipPacket: Uint8Array, spec: LinkSpec, version: 4 | 6 = ipPacket.length > 0 && ipPacket[0] >> 4 === 6 ? 6 : 4): Buffer {
  const body = Buffer.from(ipPacket);
  const proto = spec.ethertype ?? (version === 6 ? ETH_IPV6 : ETH_IPV4);
  const tags = vlanTags(spec, proto);
  const first = tags.length > 0 ? tpidOf(spec, 0) : proto;
  switch (spec.link) {
    case 'ethernet': {
      const h = Buffer.alloc(14);
      parseMac(spec.dstMac, [0x02, 0, 0, 0, 0, 0x02]).copy(h, 0);
      parseMac(spec.srcMac, [0x02, 0, 0, 0, 0, 0x01]).copy(h, 6);
      h.writeUInt16BE(first, 12);
      const f = Buffer.concat([h, tags, body]);
      return spec.pad && f.length < 60 ? Buffer.concat([f, Buffer.alloc(60 - f.length)]) : f;
    }
    case 'sll': {
      const h = Buffer.alloc(16);
      h.writeUInt16BE(spec.sllPacketType ?? 0, 0);
      h.writeUInt16BE(1, 2); // ARPHRD_ETHER
      h.writeUInt16BE(6, 4);
      parseMac(spec.srcMac, [0x02, 0, 0, 0, 0, 0x01]).copy(h, 6);
      h.writeUInt16BE(first, 14);
      return Buffer.concat([h, tags, body]);
    }
    case 'sll2': {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(first, 0);
      h.writeUInt32BE(2, 4); // interface index
      h.writeUInt16BE(1, 8); // ARPHRD_ETHER
      h[10] = spec.sllPacketType ?? 0;
      h[11] = 6;
      parseMac(spec.srcMac, [0x02, 0, 0, 0, 0, 0x01]).copy(h, 12);
      return Buffer.concat([h, tags, body]);
    }
    case 'null':
    case 'loop': {
      const h = Buffer.alloc(4);
      const fam = spec.family ?? (version === 6 ? (spec.link === 'null' ? 30 : 24) : 2);
      if (spec.link === 'null' && (spec.nullByteOrder ?? 'le') === 'le') h.writeUInt32LE(fam, 0);
      else h.writeUInt32BE(fam, 0);
      return Buffer.concat([h, body]);
    }
    case 'raw':
      return body;
  }
}

/** buildIp then wrapLink. */
export function buildFrame(spec: FrameSpec): Buffer {
  return wrapLink(buildIp(spec), spec, spec.ip.version);
}

function cutPieces(payloadLen: number, size: number | readonly FragmentPiece[]): FragmentPiece[] {
  if (typeof size !== 'number') return [...size];
  const step = size & ~7;
  if (step < 8) throw new PacketBuilderError(`fragment size must be at least 8: ${size}`);
  const pieces: FragmentPiece[] = [];
  for (let off = 0; off < payloadLen || off === 0; off += step) pieces.push({ offset: off, length: Math.min(step, payloadLen - off) });
  return pieces;
}

function ordered<T>(items: T[], order: FragmentOrder): T[] {
  if (order === 'forward') return items;
  if (order === 'reverse') return [...items].reverse();
  return order.map((i) => {
    const it = items[i];
    if (it === undefined) throw new PacketBuilderError(`fragment order index out of range: ${i} (of ${items.length})`);
    return it;
  });
}

function pieceBytes(piece: FragmentPiece, payload: Buffer): Buffer {
  if (piece.offset % 8 !== 0 || piece.offset < 0 || piece.offset > 0xfff8) throw new PacketBuilderError(`fragment offset must be a multiple of 8 in 0..65528: ${piece.offset}`);
  if (piece.data) return Buffer.from(piece.data);
  if (piece.offset + piece.length > payload.length) throw new PacketBuilderError(`fragment ${piece.offset}+${piece.length} past the datagram's ${payload.length} bytes`);
  return payload.subarray(piece.offset, piece.offset + piece.length);
}

/**
 * Splits an IPv4 datagram into fragments: `size` data bytes each (rounded down
 * to a multiple of 8), or explicit pieces (which may overlap, repeat, or carry
 * their own bytes). Options without the copy bit stay in the first fragment
 * only (RFC 791). Returns IP datagrams; wrap each with wrapLink.
 */
export function fragmentIpv4(datagram: Buffer, size: number | readonly FragmentPiece[], order: FragmentOrder = 'forward'): Buffer[] {
  if (datagram.length < 20 || datagram[0] >> 4 !== 4) throw new PacketBuilderError('not an IPv4 datagram');
  const hl = (datagram[0] & 15) * 4;
  const payload = datagram.subarray(hl);
  const copiedOpts = copiedOptions(datagram.subarray(20, hl));
  const frags = cutPieces(payload.length, size).map((piece) => {
    const data = pieceBytes(piece, payload);
    const first = piece.offset === 0;
    const opts = first ? datagram.subarray(20, hl) : copiedOpts;
    const fhl = 20 + opts.length;
    const f = Buffer.alloc(fhl + data.length);
    datagram.copy(f, 0, 0, 20);
    opts.copy(f, 20);
    f[0] = 0x40 | (fhl / 4);
    f.writeUInt16BE(f.length, 2);
    const more = piece.more ?? piece.offset + data.length < payload.length;
    f.writeUInt16BE((datagram.readUInt16BE(6) & 0x4000) | (more ? 0x2000 : 0) | (piece.offset / 8), 6);
    f.writeUInt16BE(0, 10);
    f.writeUInt16BE(internetChecksum([f.subarray(0, fhl)]), 10);
    data.copy(f, fhl);
    return f;
  });
  return ordered(frags, order);
}

/** The IPv4 options with the copy flag, padded to 4 bytes (what non-first fragments carry). */
function copiedOptions(opts: Buffer): Buffer {
  const kept: number[] = [];
  for (let i = 0; i < opts.length; ) {
    const type = opts[i];
    if (type === 0) break;
    if (type === 1) {
      i++;
      continue;
    }
    const len = opts[i + 1] ?? 0;
    if (len < 2 || i + len > opts.length) break;
    if (type & 0x80) for (let j = 0; j < len; j++) kept.push(opts[i + j]);
    i += len;
  }
  return padTo4(Uint8Array.from(kept), 'IPv4');
}

/**
 * Splits an IPv6 packet into fragments (RFC 8200): the unfragmentable part
 * (fixed header, hop-by-hop, routing and the destination options before a
 * routing header) is repeated, then a Fragment header, then `size` bytes (a
 * multiple of 8) of the rest — or explicit pieces, as fragmentIpv4. `id` is the
 * fragment identification (default ip.id of the spec, or 0x1234). Returns IP
 * packets; wrap each with wrapLink.
 */
export function fragmentIpv6(packet: Buffer, size: number | readonly FragmentPiece[], order: FragmentOrder = 'forward', id = 0x1234): Buffer[] {
  if (packet.length < 40 || packet[0] >> 4 !== 6) throw new PacketBuilderError('not an IPv6 packet');
  // Find where the fragmentable part starts, and which next-header byte must become 44.
  let nh = packet[6];
  let off = 40;
  let unfragEnd = 40;
  let unfragNhAt = 6;
  for (let guard = 0; guard < 32 && (nh === 0 || nh === 43 || nh === 60) && off + 2 <= packet.length; guard++) {
    const len = (packet[off + 1] + 1) * 8;
    if (nh === 0 || nh === 43) {
      unfragEnd = off + len;
      unfragNhAt = off;
    }
    nh = packet[off];
    off += len;
  }
  const unfrag = packet.subarray(0, unfragEnd);
  const nextAfter = packet[unfragNhAt];
  const rest = packet.subarray(unfragEnd);
  const frags = cutPieces(rest.length, size).map((piece) => {
    const data = pieceBytes(piece, rest);
    const f = Buffer.alloc(unfrag.length + 8 + data.length);
    unfrag.copy(f, 0);
    f[unfragNhAt] = 44;
    f.writeUInt16BE(f.length - 40, 4);
    const fh = unfrag.length;
    f[fh] = nextAfter;
    const more = piece.more ?? piece.offset + data.length < rest.length;
    f.writeUInt16BE(piece.offset | (more ? 1 : 0), fh + 2);
    f.writeUInt32BE(id >>> 0, fh + 4);
    data.copy(f, fh + 8);
    return f;
  });
  return ordered(frags, order);
}

/** Fragments of the datagram `spec` describes, each wrapped in the spec's link layer. */
export function buildFragmentFrames(spec: FrameSpec, size: number | readonly FragmentPiece[], order: FragmentOrder = 'forward'): Buffer[] {
  const ip = buildIp(spec);
  const frags = spec.ip.version === 4 ? fragmentIpv4(ip, size, order) : fragmentIpv6(ip, size, order, spec.ip.id ?? 0x1234);
  return frags.map((f) => wrapLink(f, spec, spec.ip.version));
}

/** A classic pcap file (microsecond timestamps) of frames of one link type, for tools like tshark. */
export function pcapFile(linkType: number, frames: readonly { data: Buffer; tsMs: number; length?: number }[], snapLen = 262144): Buffer {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(snapLen, 16);
  gh.writeUInt32LE(linkType, 20);
  parts.push(gh);
  for (const f of frames) {
    const rh = Buffer.alloc(16);
    const us = Math.round(f.tsMs * 1000);
    rh.writeUInt32LE(Math.floor(us / 1e6), 0);
    rh.writeUInt32LE(us % 1e6, 4);
    rh.writeUInt32LE(f.data.length, 8);
    rh.writeUInt32LE(f.length ?? f.data.length, 12);
    parts.push(rh, f.data);
  }
  return Buffer.concat(parts);
}
