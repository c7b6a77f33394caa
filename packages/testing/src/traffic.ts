/**
 * Real traffic for capture tests: servers on loopback (HTTP/1.1, HTTP/2
 * cleartext, DNS over UDP; Redis is the real server at 127.0.0.1:6379),
 * clients that drive them and return their own ground truth, tcpdump writing
 * a pcap of it, and a small independent reader/writer of classic pcap files
 * with an Ethernet/IPv4 flow parser (so tests check the capture code against
 * something that does not share its code).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import zlib from 'node:zlib';

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const listen = (server: net.Server | http2.Http2Server) =>
  new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));

// ---- tcpdump ----------------------------------------------------------------

export interface Tcpdump {
  readonly file: string;
  /** Waits until the file stops growing, then stops tcpdump (SIGINT) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * tcpdump writing a classic pcap of `filter` on `iface` (default lo). It says
 * "listening" before its ring is attached, so it counts as ready only once a
 * probe TCP connection to `probePort` (which the filter must match) shows up
 * in the file. The probe connection is in the file (no payload: no item).
 */
export async function startTcpdump(opts: { filter: string; file: string; probePort: number; iface?: string }): Promise<Tcpdump> {
  const { filter, file, probePort } = opts;
  const p: ChildProcess = spawn('tcpdump', ['-i', opts.iface ?? 'lo', '--immediate-mode', '-U', '-B', '32768', '-s', '0', '-w', file, filter], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  p.on('error', (e) => (err += String(e)));
  await until('tcpdump listening', () => /listening on/.test(err) || p.exitCode !== null || /ENOENT/.test(err), 10_000);
  if (p.exitCode !== null || /ENOENT/.test(err)) throw new Error(`tcpdump failed to start (apt-get install tcpdump; needs root): ${err}`);
  for (let i = 0; ; i++) {
    await new Promise<void>((r) => net.connect(probePort, '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); r(); }).on('error', () => r()));
    await new Promise((r) => setTimeout(r, 50));
    if ((statSync(file, { throwIfNoEntry: false })?.size ?? 0) > 24) break;
    if (i >= 100) {
      p.kill('SIGKILL');
      throw new Error('tcpdump never captured the probe connection');
    }
  }
  return {
    file,
    async stop() {
      let last = -1;
      for (let i = 0; i < 100; i++) {
        const size = statSync(file).size;
        if (size === last) break;
        last = size;
        await new Promise((r) => setTimeout(r, 300));
      }
      if (p.exitCode !== null) return;
      await new Promise<void>((r) => {
        p.once('exit', () => r());
        p.kill('SIGINT');
      });
    },
  };
}

// ---- servers and clients with ground truth -----------------------------------

/** One API call as the client made it. */
export interface Call {
  protocol: 'http1' | 'http2' | 'dns' | 'redis';
  /** "GET /x 200", "a.test A NOERROR", "SET key" ... */
  key: string;
}

export interface TrafficServers {
  http1Port: number;
  http2Port: number;
  dnsPort: number;
  close(): Promise<void>;
}

/**
 * A minimal authoritative DNS answer to an A query: one A record (TTL 60) when
 * `names` has the name (case-insensitive), NXDOMAIN otherwise. Ground truth
 * for the dissector tests, written independently of the dissector.
 */
export function dnsAnswer(query: Buffer, names: ReadonlyMap<string, string>): Buffer {
  let i = 12;
  const labels: string[] = [];
  while (i < query.length && query[i] !== 0) {
    labels.push(query.subarray(i + 1, i + 1 + query[i]).toString());
    i += query[i] + 1;
  }
  const qEnd = i + 5;
  const ip = names.get(labels.join('.').toLowerCase());
  const header = Buffer.from(query.subarray(0, 12));
  header.writeUInt16BE(0x8180 | (ip ? 0 : 3), 2);
  header.writeUInt16BE(ip ? 1 : 0, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  const answer = ip ? Buffer.concat([Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]), Buffer.from(ip.split('.').map(Number))]) : Buffer.alloc(0);
  return Buffer.concat([header, query.subarray(12, qEnd), answer]);
}

const DNS_NAMES = new Map([['a.test', '10.1.2.3'], ['b.test', '10.9.8.7'], ['c.test', '10.0.0.42']]);

/**
 * HTTP/1.1 server: `/plain/<n>?status=S` (Content-Length body), `/chunked/<n>?status=S`
 * (Transfer-Encoding: chunked, 3 chunks), `/gzip/<n>?status=S` (gzip-encoded JSON);
 * HTTP/2 cleartext server answering `?status=S`; an authoritative DNS server for
 * a.test, b.test, c.test (others: NXDOMAIN).
 */
export async function startTrafficServers(): Promise<TrafficServers> {
  const web = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const status = Number(url.searchParams.get('status') ?? 200);
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const payload = JSON.stringify({ path: url.pathname, got: body.length, pad: 'x'.repeat(200) });
      const head = req.method === 'HEAD' || status === 204 || status === 304;
      if (url.pathname.startsWith('/chunked')) {
        res.writeHead(status, { 'content-type': 'application/json' });
        if (head) return res.end();
        res.write(payload.slice(0, 50));
        res.write(payload.slice(50, 120));
        res.end(payload.slice(120));
      } else if (url.pathname.startsWith('/gzip')) {
        const gz = zlib.gzipSync(payload);
        res.writeHead(status, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': head ? undefined : gz.length });
        res.end(head ? undefined : gz);
      } else {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(head ? undefined : payload);
      }
    });
  });
  web.keepAliveTimeout = 30_000;
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    const status = Number(new URL(String(headers[':path']), 'http://x').searchParams.get('status') ?? 200);
    stream.respond({ ':status': status, 'content-type': 'text/plain' });
    stream.end(`hello ${headers[':path']}`);
  });
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => udp.send(dnsAnswer(msg, DNS_NAMES), rinfo.port, rinfo.address));
  const http1Port = await listen(web);
  const http2Port = await listen(h2);
  const dnsPort = await new Promise<number>((r) => udp.bind(0, '127.0.0.1', () => r(udp.address().port)));
  return {
    http1Port,
    http2Port,
    dnsPort,
    async close() {
      web.closeAllConnections();
      await new Promise<void>((r) => web.close(() => r()));
      await new Promise<void>((r) => h2.close(() => r()));
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'GET'];
const STATUSES = [200, 201, 404, 500, 200, 503];
const KINDS = ['plain', 'chunked', 'gzip'];

/**
 * n HTTP/1.1 calls over `sockets` keep-alive connections: methods, statuses,
 * request bodies, Content-Length, chunked and gzip responses. Key: "METHOD /path STATUS".
 */
export async function http1Calls(port: number, n: number, opts: { sockets?: number; offset?: number } = {}): Promise<Call[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.sockets ?? 2 });
  const calls: Call[] = [];
  const off = opts.offset ?? 0;
  try {
    await Promise.all(Array.from({ length: n }, (_, j) => new Promise<void>((resolve, reject) => {
      const i = j + off;
      const method = METHODS[i % METHODS.length];
      const status = STATUSES[(i >> 1) % STATUSES.length];
      const path = `/${KINDS[i % KINDS.length]}/${i % 4}`;
      calls.push({ protocol: 'http1', key: `${method} ${path} ${status}` });
      const req = http.request({ host: '127.0.0.1', port, method, path: `${path}?status=${status}`, agent, headers: { 'content-type': 'text/plain', 'accept-encoding': 'gzip' } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end(method === 'POST' || method === 'PUT' ? `payload-${i}-${'y'.repeat(i % 50)}` : undefined);
    })));
  } finally {
    agent.destroy();
  }
  return calls;
}

/** n HTTP/2 prior-knowledge calls on one connection. Key: "GET /path STATUS". */
export async function http2Calls(port: number, n: number): Promise<Call[]> {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  const calls: Call[] = [];
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => new Promise<void>((resolve, reject) => {
      const status = [200, 404, 503][i % 3];
      const path = `/h2/${i % 5}`;
      calls.push({ protocol: 'http2', key: `GET ${path} ${status}` });
      const req = client.request({ ':path': `${path}?status=${status}` });
      req.resume();
      req.on('end', () => resolve());
      req.on('error', reject);
      req.end();
    })));
  } finally {
    await new Promise<void>((r) => client.close(() => r()));
  }
  return calls;
}

/** A and NXDOMAIN lookups through a real resolver, one at a time. Key: "name A CODE". */
export async function dnsQueries(port: number, names: readonly string[]): Promise<Call[]> {
  const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const calls: Call[] = [];
  for (const name of names) {
    await resolver.resolve4(name).catch(() => undefined);
    calls.push({ protocol: 'dns', key: `${name} A ${DNS_NAMES.has(name) ? 'NOERROR' : 'NXDOMAIN'}` });
  }
  return calls;
}

/** A connection to the real Redis server at 127.0.0.1:6379 (its localPort lets a capture filter take only this connection). */
export async function connectRedis(): Promise<net.Socket> {
  const sock = net.connect(6379, '127.0.0.1');
  await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
  return sock;
}

/**
 * n Redis commands (SET, GET, INCR, then one DEL) on `sock` (default: a new
 * connection), half pipelined in one write, then one at a time; keys under a
 * unique prefix, deleted at the end; the connection is closed. Key: "COMMAND key".
 */
export async function redisCommands(n: number, socket?: net.Socket): Promise<Call[]> {
  const prefix = `ws-test-${process.pid}-${Date.now()}`;
  const sock = socket ?? (await connectRedis());
  const enc = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  const cmds: string[][] = [];
  for (let i = 0; i < n; i++) {
    const k = `${prefix}:${i % 3}`;
    cmds.push(i % 3 === 0 ? ['SET', k, `value-${i}`] : i % 3 === 1 ? ['GET', k] : ['INCR', `${prefix}:n`]);
  }
  cmds.push(['DEL', `${prefix}:0`, `${prefix}:1`, `${prefix}:2`, `${prefix}:n`]);
  let replies = 0;
  let buf = '';
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    // Every reply here is one line or a bulk string of one line: count CRLF-terminated top-level replies.
    for (;;) {
      const nl = buf.indexOf('\r\n');
      if (nl < 0) break;
      if (buf[0] === '$' && Number(buf.slice(1, nl)) >= 0) {
        const len = Number(buf.slice(1, nl));
        if (buf.length < nl + 2 + len + 2) break;
        buf = buf.slice(nl + 2 + len + 2);
      } else buf = buf.slice(nl + 2);
      replies++;
    }
  });
  // Half the commands pipelined in one write, the rest one by one.
  const half = cmds.length >> 1;
  sock.write(cmds.slice(0, half).map((c) => enc(...c)).join(''));
  await until('pipelined redis replies', () => replies >= half, 5_000);
  for (let i = half; i < cmds.length; i++) {
    sock.write(enc(...cmds[i]));
    await until('redis reply', () => replies >= i + 1, 5_000);
  }
  await new Promise<void>((r) => sock.end(() => r()));
  await new Promise((r) => setTimeout(r, 50));
  sock.destroy();
  return cmds.map((c) => ({ protocol: 'redis', key: `${c[0]} ${c[1]}` }));
}

// ---- classic pcap, independent of the capture code ---------------------------

export interface PcapRecord {
  /** Offset of the record header in the file. */
  offset: number;
  sec: number;
  /** Microseconds (or nanoseconds in a nanosecond file). */
  frac: number;
  origLen: number;
  data: Buffer;
}

export interface PcapContents {
  linkType: number;
  nanos: boolean;
  records: PcapRecord[];
}

/** Reads a classic little/big-endian pcap file (what tcpdump -w writes). Throws on anything else or a damaged file. */
export function readPcap(fileOrBytes: string | Buffer): PcapContents {
  const b = typeof fileOrBytes === 'string' ? readFileSync(fileOrBytes) : fileOrBytes;
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const be = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  if (!le && !be) throw new Error(`not a classic pcap (magic 0x${magic.toString(16)})`);
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const nanos = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const linkType = u32(20) & 0x0fffffff;
  const records: PcapRecord[] = [];
  let o = 24;
  while (o < b.length) {
    if (o + 16 > b.length) throw new Error(`pcap truncated in a record header at ${o}`);
    const caplen = u32(o + 8);
    if (o + 16 + caplen > b.length) throw new Error(`pcap truncated in a record at ${o}`);
    records.push({ offset: o, sec: u32(o), frac: u32(o + 4), origLen: u32(o + 12), data: b.subarray(o + 16, o + 16 + caplen) });
    o += 16 + caplen;
  }
  return { linkType, nanos, records };
}

/** A little-endian microsecond pcap of the records (each record's frac in µs). */
export function writePcap(linkType: number, records: readonly { sec: number; frac: number; origLen?: number; data: Uint8Array }[]): Buffer {
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(262144, 16);
  h.writeUInt32LE(linkType, 20);
  parts.push(h);
  for (const r of records) {
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(r.sec >>> 0, 0);
    rh.writeUInt32LE(r.frac >>> 0, 4);
    rh.writeUInt32LE(r.data.length, 8);
    rh.writeUInt32LE(Math.max(r.origLen ?? r.data.length, r.data.length) >>> 0, 12);
    parts.push(rh, Buffer.from(r.data.buffer, r.data.byteOffset, r.data.length));
  }
  return Buffer.concat(parts);
}

export interface FlowOf {
  /** 6 TCP, 17 UDP. */
  protocol: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  /** Offset of the transport payload in the frame. */
  payloadOffset: number;
  /** Offset of the IP header / transport header in the frame. */
  ipOffset: number;
  l4Offset: number;
}

/** The IPv4 TCP/UDP flow of an Ethernet frame (LINKTYPE_ETHERNET, what tcpdump -i lo writes), or null. */
export function flowOf(frame: Buffer): FlowOf | null {
  if (frame.length < 14 + 20 || frame.readUInt16BE(12) !== 0x0800) return null;
  const ip = 14;
  if (frame[ip] >> 4 !== 4) return null;
  const ihl = (frame[ip] & 0x0f) * 4;
  const protocol = frame[ip + 9];
  const l4 = ip + ihl;
  if ((protocol !== 6 && protocol !== 17) || frame.length < l4 + 8) return null;
  const addr = (o: number) => `${frame[o]}.${frame[o + 1]}.${frame[o + 2]}.${frame[o + 3]}`;
  const payloadOffset = protocol === 6 ? l4 + (frame[l4 + 12] >> 4) * 4 : l4 + 8;
  return {
    protocol, src: addr(ip + 12), srcPort: frame.readUInt16BE(l4), dst: addr(ip + 16), dstPort: frame.readUInt16BE(l4 + 2),
    payloadOffset, ipOffset: ip, l4Offset: l4,
  };
}

/** Whether the frame belongs to the conversation between the two endpoints (either direction). */
export function frameInConversation(frame: Buffer, a: { ip: string; port: number }, b: { ip: string; port: number }, protocol = 6): boolean {
  const f = flowOf(frame);
  if (!f || f.protocol !== protocol) return false;
  return (f.src === a.ip && f.srcPort === a.port && f.dst === b.ip && f.dstPort === b.port)
    || (f.src === b.ip && f.srcPort === b.port && f.dst === a.ip && f.dstPort === a.port);
}
