/**
 * Test and bench support for the DNS dissectors: an independent DNS message
 * encoder (with name compression) and a tiny authoritative server for one
 * zone, on UDP and TCP on the same loopback port, that records every
 * message it receives and sends. Real resolvers (Node's c-ares) talk to it;
 * the recorded bytes are then fed to the dissectors.
 *
 * The encoder and the server's query reader share no code with the parser
 * under test (dns-message.ts), so they are ground truth for it.
 */
import dgram from 'node:dgram';
import net from 'node:net';

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, HTTPS: 65, CAA: 257 } as const;
const TYPE_BY_NAME: Record<string, number> = { ...TYPE };

/** A zone record, in the shape the dissector should report it (plus `raw` for unknown types). */
export interface ZoneRecord {
  name: string;
  type: string;
  class: 'IN';
  ttl: number;
  ip?: string;
  cname?: string;
  ns?: string;
  ptr?: string;
  mx?: { preference: number; exchange: string };
  txt?: string[];
  srv?: { priority: number; weight: number; port: number; target: string };
  soa?: { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };
  caa?: { critical: boolean; flags: number; tag: string; value: string };
  https?: { priority: number; target: string; params: Array<{ key: string; value: unknown }> };
  /** Unknown types: rdata as hex (the dissector reports it as `data`). */
  data?: string;
}

const SOA: ZoneRecord = {
  name: 'example.test', type: 'SOA', class: 'IN', ttl: 3600,
  soa: { mname: 'ns1.example.test', rname: 'hostmaster.example.test', serial: 2024010101, refresh: 7200, retry: 3600, expire: 1209600, minimum: 300 },
};

export const ZONE: ZoneRecord[] = [
  SOA,
  { name: 'example.test', type: 'NS', class: 'IN', ttl: 3600, ns: 'ns1.example.test' },
  { name: 'example.test', type: 'NS', class: 'IN', ttl: 3600, ns: 'ns2.example.test' },
  { name: 'a.example.test', type: 'A', class: 'IN', ttl: 300, ip: '192.0.2.1' },
  { name: 'a.example.test', type: 'A', class: 'IN', ttl: 300, ip: '192.0.2.2' },
  { name: 'a.example.test', type: 'AAAA', class: 'IN', ttl: 300, ip: '2001:db8::1' },
  { name: 'a.example.test', type: 'AAAA', class: 'IN', ttl: 300, ip: '2001:db8:0:1:2:3:0:ff' },
  { name: 'www.example.test', type: 'CNAME', class: 'IN', ttl: 60, cname: 'a.example.test' },
  { name: 'example.test', type: 'MX', class: 'IN', ttl: 300, mx: { preference: 10, exchange: 'mail.example.test' } },
  { name: 'example.test', type: 'MX', class: 'IN', ttl: 300, mx: { preference: 20, exchange: 'mail2.example.test' } },
  { name: 'example.test', type: 'TXT', class: 'IN', ttl: 300, txt: ['v=spf1 -all'] },
  { name: 'example.test', type: 'TXT', class: 'IN', ttl: 300, txt: ['hello', 'wörld'] },
  { name: '_sip._tcp.example.test', type: 'SRV', class: 'IN', ttl: 300, srv: { priority: 10, weight: 60, port: 5060, target: 'sip.example.test' } },
  { name: '1.2.0.192.in-addr.arpa', type: 'PTR', class: 'IN', ttl: 300, ptr: 'a.example.test' },
  { name: 'example.test', type: 'CAA', class: 'IN', ttl: 300, caa: { critical: false, flags: 0, tag: 'issue', value: 'letsencrypt.org' } },
  {
    name: 'svc.example.test', type: 'HTTPS', class: 'IN', ttl: 300,
    https: { priority: 1, target: '', params: [{ key: 'alpn', value: ['h2', 'h3'] }, { key: 'port', value: 8443 }, { key: 'ipv4hint', value: ['192.0.2.7'] }] },
  },
  { name: 'slow.example.test', type: 'A', class: 'IN', ttl: 1, ip: '192.0.2.99' },
  { name: 'odd.example.test', type: 'TYPE65400', class: 'IN', ttl: 5, data: 'deadbeef00' },
  // Over 512 bytes: truncated over UDP, whole over TCP.
  ...Array.from({ length: 12 }, (_, i): ZoneRecord => ({ name: 'big.example.test', type: 'TXT', class: 'IN', ttl: 30, txt: [`record ${i} `.padEnd(60, 'x')] })),
];

function parseIPv6(s: string): number[] {
  const [h, t] = s.includes('::') ? s.split('::') : [s, undefined];
  const hp = h ? h.split(':') : [];
  const tp = t !== undefined && t !== '' ? t.split(':') : [];
  const groups = t === undefined ? hp : [...hp, ...Array(8 - hp.length - tp.length).fill('0'), ...tp];
  const out: number[] = [];
  for (const g of groups) {
    const v = parseInt(g, 16);
    out.push(v >> 8, v & 0xff);
  }
  return out;
}

/** A DNS message writer with RFC 1035 name compression. */
export class DnsWriter {
  readonly bytes: number[] = [];
  private readonly names = new Map<string, number>();
  private readonly compress: boolean;
  constructor(compress = true) {
    this.compress = compress;
  }
  u8(v: number): void {
    this.bytes.push(v & 0xff);
  }
  u16(v: number): void {
    this.bytes.push((v >> 8) & 0xff, v & 0xff);
  }
  u32(v: number): void {
    this.bytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  raw(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]);
  }
  name(n: string, compress = this.compress): void {
    const labels = n === '' ? [] : n.split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const at = this.names.get(suffix);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.bytes.length < 0x3fff) this.names.set(suffix, this.bytes.length);
      const b = Buffer.from(labels[i], 'latin1');
      this.u8(b.length);
      this.raw(b);
    }
    this.u8(0);
  }
  charString(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u8(b.length);
    this.raw(b);
  }
  toBuffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

function typeNumber(t: string): number {
  if (t.startsWith('TYPE')) return Number(t.slice(4));
  const n = TYPE_BY_NAME[t];
  if (n === undefined) throw new Error(`testkit: unknown type ${t}`);
  return n;
}

function writeRecord(w: DnsWriter, r: ZoneRecord): void {
  w.name(r.name);
  w.u16(typeNumber(r.type));
  w.u16(1);
  w.u32(r.ttl);
  const lenAt = w.bytes.length;
  w.u16(0);
  const start = w.bytes.length;
  switch (r.type) {
    case 'A':
      for (const p of (r.ip as string).split('.')) w.u8(Number(p));
      break;
    case 'AAAA':
      w.raw(parseIPv6(r.ip as string));
      break;
    case 'CNAME':
      w.name(r.cname as string);
      break;
    case 'NS':
      w.name(r.ns as string);
      break;
    case 'PTR':
      w.name(r.ptr as string);
      break;
    case 'MX':
      w.u16(r.mx!.preference);
      w.name(r.mx!.exchange);
      break;
    case 'TXT':
      for (const s of r.txt!) w.charString(s);
      break;
    case 'SRV':
      w.u16(r.srv!.priority);
      w.u16(r.srv!.weight);
      w.u16(r.srv!.port);
      w.name(r.srv!.target, false); // RFC 2782: no compression here (c-ares rejects it)
      break;
    case 'SOA': {
      const s = r.soa!;
      w.name(s.mname);
      w.name(s.rname);
      for (const v of [s.serial, s.refresh, s.retry, s.expire, s.minimum]) w.u32(v);
      break;
    }
    case 'CAA':
      w.u8(r.caa!.flags);
      w.u8(r.caa!.tag.length);
      w.raw(Buffer.from(r.caa!.tag, 'latin1'));
      w.raw(Buffer.from(r.caa!.value, 'utf8'));
      break;
    case 'HTTPS': {
      const h = r.https!;
      w.u16(h.priority);
      w.u8(0); // target "." (uncompressed, RFC 9460)
      for (const p of h.params) {
        const v = new DnsWriter(false);
        if (p.key === 'alpn') for (const s of p.value as string[]) v.charString(s);
        else if (p.key === 'port') v.u16(p.value as number);
        else if (p.key === 'ipv4hint') for (const ip of p.value as string[]) for (const x of ip.split('.')) v.u8(Number(x));
        w.u16({ alpn: 1, port: 3, ipv4hint: 4 }[p.key] as number);
        w.u16(v.bytes.length);
        w.raw(v.bytes);
      }
      break;
    }
    default:
      w.raw(Buffer.from(r.data as string, 'hex'));
  }
  const len = w.bytes.length - start;
  w.bytes[lenAt] = len >> 8;
  w.bytes[lenAt + 1] = len & 0xff;
}

export interface BuildOptions {
  id: number;
  response: boolean;
  opcode?: number;
  aa?: boolean;
  tc?: boolean;
  rd?: boolean;
  ra?: boolean;
  rcode?: number;
  questions: Array<{ name: string; type: string | number; class?: number }>;
  answers?: ZoneRecord[];
  authorities?: ZoneRecord[];
  additionals?: ZoneRecord[];
  /** Adds an OPT record with this UDP payload size. */
  ednsUdpSize?: number;
  compress?: boolean;
}

export function buildDnsMessage(o: BuildOptions): Buffer {
  const w = new DnsWriter(o.compress ?? true);
  w.u16(o.id);
  w.u8((o.response ? 0x80 : 0) | ((o.opcode ?? 0) << 3) | (o.aa ? 4 : 0) | (o.tc ? 2 : 0) | (o.rd ? 1 : 0));
  w.u8((o.ra ? 0x80 : 0) | (o.rcode ?? 0));
  const an = o.answers ?? [];
  const ns = o.authorities ?? [];
  const ar = o.additionals ?? [];
  w.u16(o.questions.length);
  w.u16(an.length);
  w.u16(ns.length);
  w.u16(ar.length + (o.ednsUdpSize ? 1 : 0));
  for (const q of o.questions) {
    w.name(q.name);
    w.u16(typeof q.type === 'number' ? q.type : typeNumber(q.type));
    w.u16(q.class ?? 1);
  }
  for (const r of an) writeRecord(w, r);
  for (const r of ns) writeRecord(w, r);
  for (const r of ar) writeRecord(w, r);
  if (o.ednsUdpSize) {
    w.u8(0);
    w.u16(TYPE.OPT);
    w.u16(o.ednsUdpSize);
    w.u32(0);
    w.u16(0);
  }
  return w.toBuffer();
}

/** The server's own query reader: header, first question (queries are not compressed), OPT presence. */
function readQuery(b: Buffer): { id: number; rd: boolean; name: string; type: number; cls: number; edns: number } | null {
  if (b.length < 17 || b[2] & 0x80) return null;
  let p = 12;
  const labels: string[] = [];
  for (let guard = 0; guard < 128; guard++) {
    const l = b[p];
    if (l === undefined || l > 63) return null;
    p++;
    if (l === 0) break;
    labels.push(b.toString('latin1', p, p + l));
    p += l;
  }
  if (p + 4 > b.length) return null;
  const type = b.readUInt16BE(p);
  const cls = b.readUInt16BE(p + 2);
  p += 4;
  let edns = 0;
  // An OPT record after the question: root name (0), type 41.
  if (b.readUInt16BE(10) > 0 && b[p] === 0 && p + 5 <= b.length && b.readUInt16BE(p + 1) === TYPE.OPT) edns = b.readUInt16BE(p + 3);
  return { id: b.readUInt16BE(0), rd: (b[2] & 1) === 1, name: labels.join('.'), type, cls, edns };
}

export interface ZoneAnswer {
  rcode: number;
  answers: ZoneRecord[];
  authorities: ZoneRecord[];
}

/** Authoritative lookup in ZONE (CNAME chased one step). */
export function lookup(name: string, type: string): ZoneAnswer {
  const n = name.toLowerCase();
  const owned = ZONE.filter((r) => r.name === n);
  if (owned.length === 0) return { rcode: 3, answers: [], authorities: [SOA] };
  const direct = owned.filter((r) => r.type === type);
  if (direct.length) return { rcode: 0, answers: direct, authorities: [] };
  const cname = owned.find((r) => r.type === 'CNAME');
  if (cname) return { rcode: 0, answers: [cname, ...ZONE.filter((r) => r.name === cname.cname && r.type === type)], authorities: [] };
  return { rcode: 0, answers: [], authorities: [SOA] };
}

function typeName(t: number): string {
  for (const [k, v] of Object.entries(TYPE)) if (v === t) return k;
  return `TYPE${t}`;
}

export function answerQuery(query: Buffer, maxSize: number): Buffer | null {
  const q = readQuery(query);
  if (!q) return null;
  const z = lookup(q.name, typeName(q.type));
  const base = {
    id: q.id, response: true, aa: true, rd: q.rd, ra: false, rcode: z.rcode,
    questions: [{ name: q.name, type: q.type, class: q.cls }], ednsUdpSize: q.edns ? 1232 : undefined,
  };
  const full = buildDnsMessage({ ...base, answers: z.answers, authorities: z.authorities });
  if (full.length <= maxSize) return full;
  return buildDnsMessage({ ...base, tc: true });
}

export interface RecordedDatagram {
  dir: 0 | 1;
  data: Buffer;
  tsMs: number;
  /** The client's port (the flow). */
  clientPort: number;
}

export interface RecordedTcp {
  chunks: Array<{ dir: 0 | 1; data: Buffer; tsMs: number }>;
  clientPort: number;
  closed: Promise<void>;
}

export interface DnsTestServer {
  port: number;
  datagrams: RecordedDatagram[];
  tcp: RecordedTcp[];
  /** Drop (do not answer) UDP queries for these names: for timeout tests. */
  silent: Set<string>;
  /** Answer UDP queries for these names after this many ms (so a client retransmits first). */
  delayed: Map<string, number>;
  close(): Promise<void>;
}

/** Starts the zone's server on 127.0.0.1, UDP and TCP on one port. */
export async function startDnsTestServer(): Promise<DnsTestServer> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve());
    });
    const port = udp.address().port;
    const tcpServer = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcpServer.once('error', () => resolve(false));
      tcpServer.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) {
      udp.close();
      continue;
    }
    const datagrams: RecordedDatagram[] = [];
    const tcp: RecordedTcp[] = [];
    const silent = new Set<string>();
    const delayed = new Map<string, number>();
    const sockets = new Set<net.Socket>();
    udp.on('message', (msg, rinfo) => {
      datagrams.push({ dir: 0, data: Buffer.from(msg), tsMs: Date.now(), clientPort: rinfo.port });
      const q = readQuery(msg);
      if (q && silent.has(q.name.toLowerCase())) return;
      const resp = answerQuery(msg, q && q.edns ? Math.min(q.edns, 1232) : 512);
      if (!resp) return;
      const send = () => {
        datagrams.push({ dir: 1, data: resp, tsMs: Date.now(), clientPort: rinfo.port });
        udp.send(resp, rinfo.port, rinfo.address);
      };
      const delay = q ? delayed.get(q.name.toLowerCase()) : undefined;
      if (delay) setTimeout(send, delay);
      else send();
    });
    tcpServer.on('connection', (s) => {
      sockets.add(s);
      const rec: RecordedTcp = { chunks: [], clientPort: s.remotePort ?? 0, closed: new Promise((r) => s.once('close', () => r())) };
      tcp.push(rec);
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        rec.chunks.push({ dir: 0, data: Buffer.from(d), tsMs: Date.now() });
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + msg.length);
          const resp = answerQuery(msg, 65535);
          if (!resp) continue;
          const framed = Buffer.concat([Buffer.from([resp.length >> 8, resp.length & 0xff]), resp]);
          rec.chunks.push({ dir: 1, data: framed, tsMs: Date.now() });
          s.write(framed);
        }
      });
      s.on('end', () => s.end());
      s.on('error', () => s.destroy());
      s.once('close', () => sockets.delete(s));
    });
    return {
      port, datagrams, tcp, silent, delayed,
      async close() {
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => tcpServer.close(() => r()));
        await new Promise<void>((r) => udp.close(() => r()));
      },
    };
  }
  throw new Error('testkit: no free port for UDP and TCP together after 20 attempts');
}
