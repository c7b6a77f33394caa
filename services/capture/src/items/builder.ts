/**
 * Where a dissected API call becomes a Kubeshark-shaped item: adds identity
 * (id, index, stream), where it was captured (node, worker), the endpoints
 * (client -> src, server -> dst), the protocol's layer3/layer4, timestamps
 * and elapsedTime. Pod names and namespaces come from the hub's IP -> pod
 * map (`resolve`); without it they are ''.
 */
import type { ConnectionInfo, ItemDraft } from '../types.ts';

export interface CapturedItem {
  /** The Kubeshark item JSON object. */
  item: Record<string, unknown>;
  id: string;
  protocol: string;
  timestampMs: number;
}

export interface ItemBuilderOptions {
  node: { name: string; ip: string };
  /** Worker identity in items (Kubeshark: the worker's address). */
  worker: string;
  /** Optional: fills src/dst name and namespace from an IP. */
  resolve?: (ip: string) => { name: string; namespace: string } | undefined;
}

/** Per-connection strings, made once per connection rather than per item. */
interface ConnStrings {
  stream: string;
  srcPort: string;
  dstPort: string;
  layer3: string;
  layer4: string;
}

export class ItemBuilder {
  private index = 0;
  private readonly connStrings = new WeakMap<ConnectionInfo, ConnStrings>();
  /** startTime is ISO 8601 with ms: the part up to the seconds changes once a second. */
  private isoSecond = NaN;
  private isoPrefix = '';
  private readonly opts: ItemBuilderOptions;
  /** Ids are unique per capture run: a random prefix plus the index. */
  private readonly prefix: string;

  constructor(opts: ItemBuilderOptions) {
    this.opts = opts;
    this.prefix = Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0');
  }

  get count(): number {
    return this.index;
  }

  private strings(conn: ConnectionInfo): ConnStrings {
    let cs = this.connStrings.get(conn);
    if (cs === undefined) {
      cs = {
        stream: conn.id.toString(16).padStart(6, '0'),
        srcPort: String(conn.client.port),
        dstPort: String(conn.server.port),
        layer3: conn.ipVersion === 6 ? 'IPv6' : 'IP',
        layer4: conn.transport === 'udp' ? 'UDP' : 'TCP',
      };
      this.connStrings.set(conn, cs);
    }
    return cs;
  }

  /** new Date(ms).toISOString(), with the date-and-seconds part cached. */
  private isoTime(ms: number): string {
    const whole = Math.floor(ms);
    const second = Math.floor(whole / 1000);
    if (second !== this.isoSecond) {
      this.isoSecond = second;
      this.isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
    }
    const milli = whole - second * 1000;
    return `${this.isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
  }

  build(conn: ConnectionInfo, d: ItemDraft): CapturedItem {
    const index = this.index++;
    const id = `${this.prefix}-${index.toString(16)}`;
    const cs = this.strings(conn);
    const start = d.requestTsMs > 0 ? d.requestTsMs : d.responseTsMs;
    const elapsed = d.requestTsMs > 0 && d.responseTsMs > 0 ? Math.max(0, d.responseTsMs - d.requestTsMs) : 0;
    const srcPod = this.opts.resolve?.(conn.client.ip);
    const dstPod = this.opts.resolve?.(conn.server.ip);
    const item: Record<string, unknown> = {
      id,
      index,
      stream: cs.stream,
      worker: this.opts.worker,
      node: this.opts.node,
      protocol: { name: d.protocol.name, version: d.protocol.version, abbr: d.protocol.abbr, longName: d.protocol.longName, macro: d.protocol.macro, layer3: cs.layer3, layer4: cs.layer4 },
      src: { ip: conn.client.ip, port: cs.srcPort, name: srcPod?.name ?? '', namespace: srcPod?.namespace ?? '' },
      dst: { ip: conn.server.ip, port: cs.dstPort, name: dstPod?.name ?? '', namespace: dstPod?.namespace ?? '' },
      timestamp: Math.round(start),
      startTime: this.isoTime(start),
      request: d.request,
      response: d.response,
      requestSize: d.requestSize,
      responseSize: d.responseSize,
      elapsedTime: Math.round(elapsed * 1000) / 1000,
      passed: false,
      failed: false,
      error: d.error ?? null,
    };
    return { item, id, protocol: d.protocol.name, timestampMs: Math.round(start) };
  }
}
