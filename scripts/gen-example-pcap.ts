/**
 * Regenerates examples/pcap/http-sample.pcap (deterministic): 500 HTTP/1.1
 * API calls between pods on 10 keep-alive connections, as Ethernet/IPv4/TCP
 * frames with handshakes, acknowledgements and FINs. The calls are the
 * bundled items' (packages/testing makeHttpItem) turned back into bytes.
 */
import { writeFileSync } from 'node:fs';
import { makeHttpItem, rng, type HttpItem } from '@wirescript/testing';
import { buildFrame, pcapFile } from '../services/capture/src/testing/packet-builder.ts';
import { LINKTYPE } from '../services/capture/src/types.ts';

const CALLS = 500;
const CONNECTIONS = 10;
const MSS = 1460;

function requestBytes(it: HttpItem): Buffer {
  const req = it.request as unknown as { method: string; url: string; headers: Record<string, string> };
  const body = req.method === 'POST' || req.method === 'PUT' ? JSON.stringify({ id: it.index, note: 'example' }) : '';
  const headers = { ...req.headers, ...(body ? { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } : {}) };
  return Buffer.from(`${req.method} ${req.url} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
}

function responseBytes(it: HttpItem): Buffer {
  const res = it.response as unknown as { status: number; statusText: string; content: { text: string } };
  const body = it.request.method === 'HEAD' || res.status === 204 ? '' : res.content.text;
  const head = `HTTP/1.1 ${res.status} ${res.statusText}\r\nContent-Type: application/json\r\n${res.status === 204 ? '' : `Content-Length: ${Buffer.byteLength(res.content.text)}\r\n`}\r\n`;
  return Buffer.from(head + body);
}

interface Conn { client: string; server: string; cport: number; sport: number; cseq: number; sseq: number }

export function buildExamplePcap(): Buffer {
  const random = rng(11);
  const frames: { data: Buffer; tsMs: number }[] = [];
  let t = Date.UTC(2026, 10, 1, 12, 0, 0);
  const emit = (c: Conn, fromClient: boolean, flags: string, payload: Uint8Array = Buffer.alloc(0)) => {
    const tcp = fromClient
      ? { srcPort: c.cport, dstPort: c.sport, seq: c.cseq, ack: c.sseq, flags, payload }
      : { srcPort: c.sport, dstPort: c.cport, seq: c.sseq, ack: c.cseq, flags, payload };
    frames.push({ data: buildFrame({ link: 'ethernet', ip: { version: 4, src: fromClient ? c.client : c.server, dst: fromClient ? c.server : c.client }, tcp }), tsMs: t });
    const advance = payload.length + (flags.includes('S') || flags.includes('F') ? 1 : 0);
    if (fromClient) c.cseq = (c.cseq + advance) >>> 0;
    else c.sseq = (c.sseq + advance) >>> 0;
    t += 0.05;
  };
  const send = (c: Conn, fromClient: boolean, bytes: Buffer) => {
    for (let off = 0; off < bytes.length; off += MSS) emit(c, fromClient, 'PA', bytes.subarray(off, off + MSS));
    emit(c, !fromClient, 'A');
  };
  const items = Array.from({ length: CALLS }, (_, i) => makeHttpItem(i, random));
  const conns: Conn[] = [];
  for (let k = 0; k < CONNECTIONS; k++) {
    const it = items[k];
    const c: Conn = {
      client: (it.src as { ip: string }).ip, server: (it.dst as { ip: string }).ip,
      cport: 40000 + k, sport: 8080, cseq: 1000 + k * 7919, sseq: 5000 + k * 104729,
    };
    conns.push(c);
    emit(c, true, 'S');
    emit(c, false, 'SA');
    emit(c, true, 'A');
  }
  for (const [i, it] of items.entries()) {
    const c = conns[i % CONNECTIONS];
    send(c, true, requestBytes(it));
    t += Number(it.elapsedTime);
    send(c, false, responseBytes(it));
    t += 1;
  }
  for (const c of conns) {
    emit(c, true, 'FA');
    emit(c, false, 'FA');
    emit(c, true, 'A');
  }
  return pcapFile(LINKTYPE.ETHERNET, frames);
}

if (import.meta.main) writeFileSync(new URL('../examples/pcap/http-sample.pcap', import.meta.url), buildExamplePcap());
