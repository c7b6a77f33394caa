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

export class ItemBuilder {
  private index = 0;
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

  build(conn: ConnectionInfo, d: ItemDraft): CapturedItem {
    const index = this.index++;
    const id = `${this.prefix}-${index.toString(16)}`;
    const start = d.requestTsMs > 0 ? d.requestTsMs : d.responseTsMs;
    const elapsed = d.requestTsMs > 0 && d.responseTsMs > 0 ? Math.max(0, d.responseTsMs - d.requestTsMs) : 0;
    const srcPod = this.opts.resolve?.(conn.client.ip);
    const dstPod = this.opts.resolve?.(conn.server.ip);
    const item: Record<string, unknown> = {
      id,
      index,
      stream: conn.id.toString(16).padStart(6, '0'),
      worker: this.opts.worker,
      node: this.opts.node,
      protocol: { ...d.protocol, layer3: conn.ipVersion === 6 ? 'IPv6' : 'IP', layer4: conn.transport === 'udp' ? 'UDP' : 'TCP' },
      src: { ip: conn.client.ip, port: String(conn.client.port), name: srcPod?.name ?? '', namespace: srcPod?.namespace ?? '' },
      dst: { ip: conn.server.ip, port: String(conn.server.port), name: dstPod?.name ?? '', namespace: dstPod?.namespace ?? '' },
      timestamp: Math.round(start),
      startTime: new Date(start).toISOString(),
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
