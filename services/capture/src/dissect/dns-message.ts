/**
 * DNS message parser (RFC 1035 and successors) producing Kubeshark-shaped,
 * JSON-friendly objects. Shared by the UDP and TCP dissectors in dns.ts.
 *
 * Never throws: a message that breaks off or contradicts itself keeps what
 * was parsed before the fault and says why in `error`.
 *
 * Caps (adversarial input):
 * - a message is at most 65535 bytes (UDP/TCP framing), so every loop over
 *   records is bounded by the bytes: a record takes at least 11 bytes;
 * - name decompression: pointers must point strictly backwards (which alone
 *   rules out loops), at most MAX_POINTER_JUMPS per name, and a name is at
 *   most 255 bytes on the wire (RFC 1035 2.3.4): longer is an error;
 * - at most MAX_RECORDS_PER_SECTION records of a section are kept in the
 *   output (the rest are parsed for validity and counted in `recordsOmitted`).
 */
import { formatAddress } from '../decode/addr.ts';

/** Legal names have at most 127 labels, so at most 127 pointers; more is hostile. */
export const MAX_POINTER_JUMPS = 128;
export const MAX_NAME_WIRE_LENGTH = 255;
export const MAX_RECORDS_PER_SECTION = 256;
export const DNS_HEADER_LENGTH = 12;

const TYPE_NAMES: Record<number, string> = {
  1: 'A', 2: 'NS', 3: 'MD', 4: 'MF', 5: 'CNAME', 6: 'SOA', 7: 'MB', 8: 'MG', 9: 'MR', 10: 'NULL', 11: 'WKS', 12: 'PTR',
  13: 'HINFO', 14: 'MINFO', 15: 'MX', 16: 'TXT', 17: 'RP', 18: 'AFSDB', 19: 'X25', 20: 'ISDN', 21: 'RT', 22: 'NSAP',
  24: 'SIG', 25: 'KEY', 26: 'PX', 27: 'GPOS', 28: 'AAAA', 29: 'LOC', 30: 'NXT', 33: 'SRV', 35: 'NAPTR', 36: 'KX',
  37: 'CERT', 38: 'A6', 39: 'DNAME', 41: 'OPT', 42: 'APL', 43: 'DS', 44: 'SSHFP', 45: 'IPSECKEY', 46: 'RRSIG',
  47: 'NSEC', 48: 'DNSKEY', 49: 'DHCID', 50: 'NSEC3', 51: 'NSEC3PARAM', 52: 'TLSA', 53: 'SMIMEA', 55: 'HIP',
  59: 'CDS', 60: 'CDNSKEY', 61: 'OPENPGPKEY', 62: 'CSYNC', 63: 'ZONEMD', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF',
  104: 'NID', 105: 'L32', 106: 'L64', 107: 'LP', 108: 'EUI48', 109: 'EUI64', 249: 'TKEY', 250: 'TSIG',
  251: 'IXFR', 252: 'AXFR', 253: 'MAILB', 254: 'MAILA', 255: 'ANY', 256: 'URI', 257: 'CAA', 32768: 'TA', 32769: 'DLV',
};
const CLASS_NAMES: Record<number, string> = { 1: 'IN', 3: 'CH', 4: 'HS', 254: 'NONE', 255: 'ANY' };
const OPCODE_NAMES: Record<number, string> = { 0: 'QUERY', 1: 'IQUERY', 2: 'STATUS', 4: 'NOTIFY', 5: 'UPDATE', 6: 'DSO' };
const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 6: 'YXDOMAIN', 7: 'YXRRSET',
  8: 'NXRRSET', 9: 'NOTAUTH', 10: 'NOTZONE', 11: 'DSOTYPENI', 16: 'BADVERS', 17: 'BADKEY', 18: 'BADTIME',
  19: 'BADMODE', 20: 'BADNAME', 21: 'BADALG', 22: 'BADTRUNC', 23: 'BADCOOKIE',
};
const EDNS_OPTION_NAMES: Record<number, string> = {
  3: 'NSID', 5: 'DAU', 6: 'DHU', 7: 'N3U', 8: 'ECS', 9: 'EXPIRE', 10: 'COOKIE', 11: 'KEEPALIVE', 12: 'PADDING',
  13: 'CHAIN', 14: 'KEY-TAG', 15: 'EDE', 18: 'REPORT-CHANNEL',
};
const SVC_PARAM_NAMES: Record<number, string> = {
  0: 'mandatory', 1: 'alpn', 2: 'no-default-alpn', 3: 'port', 4: 'ipv4hint', 5: 'ech', 6: 'ipv6hint', 7: 'dohpath', 8: 'ohttp',
};

export function dnsTypeName(t: number): string {
  return TYPE_NAMES[t] ?? `TYPE${t}`;
}
export function dnsClassName(c: number): string {
  return CLASS_NAMES[c] ?? `CLASS${c}`;
}
export function dnsOpcodeName(o: number): string {
  return OPCODE_NAMES[o] ?? `OPCODE${o}`;
}
export function dnsRcodeName(r: number): string {
  return RCODE_NAMES[r] ?? `RCODE${r}`;
}

export interface DnsHeader {
  id: number;
  /** 1 for a response. */
  qr: number;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** The reserved Z bit (must be zero). */
  z: boolean;
  ad: boolean;
  cd: boolean;
  /** The 4-bit header RCODE (see DnsMessage.rcode for the EDNS-extended one). */
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface DnsQuestion {
  name: string;
  type: string;
  class: string;
  /** mDNS "QU" bit (top bit of the class), only on port 5353. */
  unicastResponse?: boolean;
}

export interface DnsEdns {
  udpPayloadSize: number;
  extendedRcode: number;
  version: number;
  dnssecOk: boolean;
  options: Array<Record<string, unknown>>;
}

export interface DnsRecord {
  name: string;
  type: string;
  class: string;
  ttl: number;
  [field: string]: unknown;
}

export interface DnsMessage {
  header: DnsHeader;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  /** Additional records without the OPT pseudo-record (which is in `edns`). */
  additionals: DnsRecord[];
  edns: DnsEdns | null;
  /** Full RCODE: the header's 4 bits extended by the OPT record's upper 8. */
  rcode: number;
  /** Records parsed but not kept (MAX_RECORDS_PER_SECTION). */
  recordsOmitted: number;
  /** Bytes of the message (the DNS payload, without a TCP length prefix). */
  size: number;
  /** Set when parsing stopped early: what was parsed before is kept. */
  error?: string;
}

export interface DnsParseOptions {
  /** Multicast DNS (port 5353): the top bit of a class is a flag (QU / cache-flush), not part of the class. */
  mdns?: boolean;
}

/** Internal: thrown by the readers below, caught in parseDnsMessage (never escapes). */
class DnsFault {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

export function readDnsHeader(buf: Buffer, off = 0): DnsHeader | null {
  if (buf.length - off < DNS_HEADER_LENGTH) return null;
  const f1 = buf[off + 2];
  const f2 = buf[off + 3];
  return {
    id: buf.readUInt16BE(off),
    qr: f1 >> 7,
    opcode: (f1 >> 3) & 0x0f,
    aa: (f1 & 0x04) !== 0,
    tc: (f1 & 0x02) !== 0,
    rd: (f1 & 0x01) !== 0,
    ra: (f2 & 0x80) !== 0,
    z: (f2 & 0x40) !== 0,
    ad: (f2 & 0x20) !== 0,
    cd: (f2 & 0x10) !== 0,
    rcode: f2 & 0x0f,
    qdcount: buf.readUInt16BE(off + 4),
    ancount: buf.readUInt16BE(off + 6),
    nscount: buf.readUInt16BE(off + 8),
    arcount: buf.readUInt16BE(off + 10),
  };
}

/**
 * Whether 12 header bytes at `off` look like DNS: a known opcode, the Z bit
 * clear, and section counts that could fit in `msgLength` bytes (a question
 * takes at least 5 bytes, a record 11). Used by the probes and TCP resync.
 */
export function plausibleDnsHeader(buf: Buffer, off: number, msgLength: number): boolean {
  if (buf.length - off < DNS_HEADER_LENGTH || msgLength < DNS_HEADER_LENGTH) return false;
  const f1 = buf[off + 2];
  const f2 = buf[off + 3];
  const opcode = (f1 >> 3) & 0x0f;
  if (opcode === 3 || opcode > 6) return false;
  if (f2 & 0x40) return false;
  const qd = buf.readUInt16BE(off + 4);
  const an = buf.readUInt16BE(off + 6);
  const ns = buf.readUInt16BE(off + 8);
  const ar = buf.readUInt16BE(off + 10);
  const isQuery = (f1 & 0x80) === 0;
  // A standard query asks one question (RFC 9619); zero happens with DSO/NOTIFY/cookies-only; more is rare.
  if (qd > 16) return false;
  if (isQuery && opcode === 0 && qd === 0 && an === 0 && ns === 0 && ar === 0) return false;
  return DNS_HEADER_LENGTH + qd * 5 + (an + ns + ar) * 11 <= msgLength;
}

function escapeLabel(buf: Buffer, start: number, end: number): string {
  let plain = true;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return buf.toString('latin1', start, end);
  // dig's presentation format: \. and \\ escaped, other non-printables as \DDD.
  let s = '';
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c === 0x2e || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c <= 0x20 || c >= 0x7f) s += '\\' + String(c).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}

/** Reads a (possibly compressed) name at `off` of `msg`; `end` bounds the uncompressed part. Sets lastEnd. */
class NameReader {
  /** Offset just after the name in the record (after the first pointer, or the root label). */
  next = 0;
  read(msg: Buffer, off: number, end: number): string {
    let name = '';
    let wireLength = 1; // the root label
    let jumps = 0;
    let pos = off;
    let limit = end;
    let afterFirstPointer = -1;
    for (;;) {
      if (pos >= limit) throw new DnsFault('name runs past the end');
      const len = msg[pos];
      if (len === 0) {
        pos += 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (pos + 1 >= limit) throw new DnsFault('name pointer runs past the end');
        const target = ((len & 0x3f) << 8) | msg[pos + 1];
        if (afterFirstPointer < 0) afterFirstPointer = pos + 2;
        // Strictly backwards: the target precedes this pointer, so a chain always ends.
        if (target >= pos) throw new DnsFault('name pointer does not point backwards');
        if (++jumps > MAX_POINTER_JUMPS) throw new DnsFault('too many name pointers');
        pos = target;
        limit = msg.length;
        continue;
      }
      if (kind !== 0) throw new DnsFault(`unsupported label type 0x${kind.toString(16)}`);
      wireLength += len + 1;
      if (wireLength > MAX_NAME_WIRE_LENGTH) throw new DnsFault('name longer than 255 bytes');
      if (pos + 1 + len > limit) throw new DnsFault('label runs past the end');
      const label = escapeLabel(msg, pos + 1, pos + 1 + len);
      name = name.length === 0 ? label : name + '.' + label;
      pos += 1 + len;
    }
    this.next = afterFirstPointer >= 0 ? afterFirstPointer : pos;
    return name;
  }
}

export function formatIPv4(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 text (the decoder's formatter: one implementation for packet addresses and AAAA records). */
export function formatIPv6(b: Buffer, off: number): string {
  return formatAddress(b, off, 6);
}

function readCharacterStrings(msg: Buffer, pos: number, end: number): string[] {
  const out: string[] = [];
  while (pos < end) {
    const len = msg[pos];
    if (pos + 1 + len > end) throw new DnsFault('character-string runs past the rdata');
    out.push(msg.toString('utf8', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return out;
}

function u16(msg: Buffer, pos: number, end: number): number {
  if (pos + 2 > end) throw new DnsFault('rdata too short');
  return msg.readUInt16BE(pos);
}
function u32(msg: Buffer, pos: number, end: number): number {
  if (pos + 4 > end) throw new DnsFault('rdata too short');
  return msg.readUInt32BE(pos);
}

function parseSvcParams(msg: Buffer, pos: number, end: number): Array<Record<string, unknown>> {
  const params: Array<Record<string, unknown>> = [];
  while (pos < end) {
    const key = u16(msg, pos, end);
    const len = u16(msg, pos + 2, end);
    const vs = pos + 4;
    const ve = vs + len;
    if (ve > end) throw new DnsFault('SvcParam runs past the rdata');
    const name = SVC_PARAM_NAMES[key] ?? `key${key}`;
    let value: unknown;
    switch (key) {
      case 0: {
        const keys: string[] = [];
        for (let p = vs; p + 2 <= ve; p += 2) keys.push(SVC_PARAM_NAMES[msg.readUInt16BE(p)] ?? `key${msg.readUInt16BE(p)}`);
        value = keys;
        break;
      }
      case 1:
        value = readCharacterStrings(msg, vs, ve);
        break;
      case 2:
        value = true;
        break;
      case 3:
        value = len === 2 ? msg.readUInt16BE(vs) : msg.toString('hex', vs, ve);
        break;
      case 4: {
        const ips: string[] = [];
        for (let p = vs; p + 4 <= ve; p += 4) ips.push(formatIPv4(msg, p));
        value = ips;
        break;
      }
      case 6: {
        const ips: string[] = [];
        for (let p = vs; p + 16 <= ve; p += 16) ips.push(formatIPv6(msg, p));
        value = ips;
        break;
      }
      case 5:
        value = msg.toString('base64', vs, ve);
        break;
      case 7:
        value = msg.toString('utf8', vs, ve);
        break;
      default:
        value = msg.toString('hex', vs, ve);
    }
    params.push({ key: name, value });
    pos = ve;
  }
  return params;
}

function parseEdnsOptions(msg: Buffer, pos: number, end: number): Array<Record<string, unknown>> {
  const options: Array<Record<string, unknown>> = [];
  while (pos < end) {
    const code = u16(msg, pos, end);
    const len = u16(msg, pos + 2, end);
    const vs = pos + 4;
    const ve = vs + len;
    if (ve > end) throw new DnsFault('EDNS option runs past the rdata');
    const o: Record<string, unknown> = { code, name: EDNS_OPTION_NAMES[code] ?? `OPTION${code}`, data: msg.toString('hex', vs, ve) };
    if (code === 15 && len >= 2) {
      o.infoCode = msg.readUInt16BE(vs);
      o.text = msg.toString('utf8', vs + 2, ve);
    }
    options.push(o);
    pos = ve;
  }
  return options;
}

/** Fills the type-specific fields of `rr` from rdata [pos, end). */
function parseRdata(rr: DnsRecord, typeNum: number, msg: Buffer, pos: number, end: number, names: NameReader): void {
  const len = end - pos;
  switch (typeNum) {
    case 1:
      if (len !== 4) throw new DnsFault('A rdata is not 4 bytes');
      rr.ip = formatIPv4(msg, pos);
      return;
    case 28:
      if (len !== 16) throw new DnsFault('AAAA rdata is not 16 bytes');
      rr.ip = formatIPv6(msg, pos);
      return;
    case 5:
      rr.cname = names.read(msg, pos, end);
      return;
    case 39:
      rr.dname = names.read(msg, pos, end);
      return;
    case 2:
      rr.ns = names.read(msg, pos, end);
      return;
    case 12:
      rr.ptr = names.read(msg, pos, end);
      return;
    case 15: {
      const preference = u16(msg, pos, end);
      rr.mx = { preference, exchange: names.read(msg, pos + 2, end) };
      return;
    }
    case 16:
    case 99:
      rr.txt = readCharacterStrings(msg, pos, end);
      return;
    case 33: {
      const priority = u16(msg, pos, end);
      const weight = u16(msg, pos + 2, end);
      const port = u16(msg, pos + 4, end);
      rr.srv = { priority, weight, port, target: names.read(msg, pos + 6, end) };
      return;
    }
    case 6: {
      const mname = names.read(msg, pos, end);
      const rname = names.read(msg, names.next, end);
      const p = names.next;
      rr.soa = {
        mname, rname,
        serial: u32(msg, p, end), refresh: u32(msg, p + 4, end), retry: u32(msg, p + 8, end),
        expire: u32(msg, p + 12, end), minimum: u32(msg, p + 16, end),
      };
      return;
    }
    case 257: {
      if (len < 2) throw new DnsFault('CAA rdata too short');
      const flags = msg[pos];
      const tagLen = msg[pos + 1];
      if (pos + 2 + tagLen > end) throw new DnsFault('CAA tag runs past the rdata');
      rr.caa = {
        critical: (flags & 0x80) !== 0, flags,
        tag: msg.toString('latin1', pos + 2, pos + 2 + tagLen),
        value: msg.toString('utf8', pos + 2 + tagLen, end),
      };
      return;
    }
    case 64:
    case 65: {
      const priority = u16(msg, pos, end);
      const target = names.read(msg, pos + 2, end);
      const svcb = { priority, target, params: parseSvcParams(msg, names.next, end) };
      if (typeNum === 65) rr.https = svcb;
      else rr.svcb = svcb;
      return;
    }
    default:
      rr.data = msg.toString('hex', pos, end);
  }
}

function newMessage(header: DnsHeader, size: number): DnsMessage {
  return { header, questions: [], answers: [], authorities: [], additionals: [], edns: null, rcode: header.rcode, recordsOmitted: 0, size };
}

/**
 * Parses one DNS message (the whole of `buf`). Returns null only when there
 * are fewer than 12 bytes (no header); otherwise a message, with `error` set
 * when something after the header could not be parsed.
 */
export function parseDnsMessage(buf: Buffer, opts: DnsParseOptions = {}): DnsMessage | null {
  const header = readDnsHeader(buf);
  if (!header) return null;
  const m = newMessage(header, buf.length);
  const names = new NameReader();
  const end = buf.length;
  let pos = DNS_HEADER_LENGTH;
  try {
    for (let i = 0; i < header.qdcount; i++) {
      const name = names.read(buf, pos, end);
      pos = names.next;
      if (pos + 4 > end) throw new DnsFault('question runs past the end');
      const t = buf.readUInt16BE(pos);
      let c = buf.readUInt16BE(pos + 2);
      pos += 4;
      const q: DnsQuestion = { name, type: dnsTypeName(t), class: '' };
      if (opts.mdns && c & 0x8000) {
        q.unicastResponse = true;
        c &= 0x7fff;
      }
      q.class = dnsClassName(c);
      if (m.questions.length < MAX_RECORDS_PER_SECTION) m.questions.push(q);
      else m.recordsOmitted++;
    }
    const sections: Array<[number, DnsRecord[]]> = [[header.ancount, m.answers], [header.nscount, m.authorities], [header.arcount, m.additionals]];
    for (const [count, out] of sections) {
      for (let i = 0; i < count; i++) {
        const name = names.read(buf, pos, end);
        pos = names.next;
        if (pos + 10 > end) throw new DnsFault('record header runs past the end');
        const t = buf.readUInt16BE(pos);
        let c = buf.readUInt16BE(pos + 2);
        const ttl = buf.readUInt32BE(pos + 4);
        const rdlen = buf.readUInt16BE(pos + 8);
        pos += 10;
        if (pos + rdlen > end) throw new DnsFault('rdata runs past the end');
        const rdEnd = pos + rdlen;
        if (t === 41) {
          // OPT: the class is the requestor's UDP payload size, the TTL carries the extended RCODE, version and DO bit.
          const ext = ttl >>> 24;
          const edns: DnsEdns = {
            udpPayloadSize: c, extendedRcode: ext, version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0,
            options: parseEdnsOptions(buf, pos, rdEnd),
          };
          if (!m.edns) {
            m.edns = edns;
            m.rcode = (ext << 4) | header.rcode;
          }
          pos = rdEnd;
          continue;
        }
        const rr: DnsRecord = { name, type: dnsTypeName(t), class: '', ttl };
        if (opts.mdns && c & 0x8000) {
          rr.cacheFlush = true;
          c &= 0x7fff;
        }
        rr.class = dnsClassName(c);
        try {
          parseRdata(rr, t, buf, pos, rdEnd, names);
        } catch (e) {
          // A damaged rdata is kept as hex; the framing (rdlength) is still sound.
          if (!(e instanceof DnsFault)) throw e;
          rr.data = buf.toString('hex', pos, rdEnd);
          rr.error = e.message;
        }
        pos = rdEnd;
        if (out.length < MAX_RECORDS_PER_SECTION) out.push(rr);
        else m.recordsOmitted++;
      }
    }
  } catch (e) {
    if (e instanceof DnsFault) m.error = e.message;
    else m.error = `internal parser error: ${String(e)}`;
  }
  return m;
}

/** Pairing key of a message: its id and questions (name case-folded, per RFC 4343). */
export function dnsQuestionKey(m: DnsMessage): string {
  let k = String(m.header.id);
  for (const q of m.questions) k += '|' + q.name.toLowerCase() + '/' + q.type + '/' + q.class;
  return k;
}

/** The item `request` object of a query. */
export function dnsRequestObject(m: DnsMessage): Record<string, unknown> {
  const h = m.header;
  const r: Record<string, unknown> = {
    opCode: dnsOpcodeName(h.opcode),
    id: h.id,
    recursionDesired: h.rd,
    checkingDisabled: h.cd,
    questions: m.questions,
  };
  if (m.answers.length) r.answers = m.answers;
  if (m.authorities.length) r.authorities = m.authorities;
  if (m.additionals.length) r.additionals = m.additionals;
  if (m.edns) r.edns = m.edns;
  if (m.recordsOmitted) r.recordsOmitted = m.recordsOmitted;
  return r;
}

/** The item `response` object of a response. */
export function dnsResponseObject(m: DnsMessage): Record<string, unknown> {
  const h = m.header;
  const r: Record<string, unknown> = {
    code: dnsRcodeName(m.rcode),
    id: h.id,
    opCode: dnsOpcodeName(h.opcode),
    authoritative: h.aa,
    truncated: h.tc,
    recursionAvailable: h.ra,
    authenticData: h.ad,
    questions: m.questions,
    answers: m.answers,
    authorities: m.authorities,
    additionals: m.additionals,
  };
  if (m.edns) r.edns = m.edns;
  if (m.recordsOmitted) r.recordsOmitted = m.recordsOmitted;
  return r;
}
