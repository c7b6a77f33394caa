/**
 * Kubeshark-shaped items for tests, benchmarks and the bundled example:
 * deterministic (seeded), realistic HTTP/1.1 API calls of ~600 bytes of JSON.
 */
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'] as const;
const PATHS = ['/api/v1/users', '/api/v1/orders', '/api/v1/catalog/items', '/healthz', '/api/v1/payments', '/login'] as const;
const STATUSES = [200, 200, 200, 200, 201, 204, 301, 400, 401, 404, 500, 503] as const;
const SERVICES = [
  { name: 'frontend-6d4cf56db6-x2k4q', ns: 'shop', ip: '10.244.1.12' },
  { name: 'orders-7b9d8c7f6-pq8lm', ns: 'shop', ip: '10.244.2.31' },
  { name: 'payments-5f6b9c8d7-zz1wr', ns: 'billing', ip: '10.244.3.7' },
  { name: 'catalog-84c5d6f9b-hh2jk', ns: 'shop', ip: '10.244.1.44' },
] as const;
const STATUS_TEXT: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content', 301: 'Moved Permanently', 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** A small deterministic PRNG (mulberry32), so fixtures are stable across runs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface HttpItem {
  [key: string]: unknown;
  request: { method: string; path: string; [k: string]: unknown };
  response: { status: number; [k: string]: unknown };
}

/** The i-th item of a deterministic stream seeded with `seed`. */
export function makeHttpItem(i: number, random: () => number = rng(i + 1)): HttpItem {
  const pick = <T,>(a: readonly T[]): T => a[Math.floor(random() * a.length)];
  const method = pick(METHODS);
  const base = pick(PATHS);
  const id = Math.floor(random() * 1000);
  const path = base === '/healthz' || base === '/login' ? base : `${base}/${id}`;
  const status = pick(STATUSES);
  const src = pick(SERVICES);
  let dst = pick(SERVICES);
  if (dst === src) dst = SERVICES[(SERVICES.indexOf(src) + 1) % SERVICES.length];
  const ts = 1_700_000_000_000 + i * 7;
  const body = status === 204 ? '' : JSON.stringify({ id, ok: status < 400 });
  // ~600 bytes of JSON, the size of a typical small API call in Kubeshark's item format.
  return {
    id: `${(i >>> 8).toString(16)}-${i}`,
    index: i,
    stream: `${(i % 97).toString().padStart(6, '0')}`,
    worker: '10.0.0.11',
    node: { ip: '10.0.0.11', name: 'node-a' },
    protocol: { name: 'http', version: '1.1', abbr: 'HTTP', macro: 'http', layer3: 'IP', layer4: 'TCP' },
    src: { ip: src.ip, port: String(30000 + (i % 20000)), name: src.name, namespace: src.ns },
    dst: { ip: dst.ip, port: '8080', name: dst.name, namespace: dst.ns },
    timestamp: ts,
    startTime: new Date(ts).toISOString(),
    request: {
      method, path, url: path, pathSegments: path.split('/').filter(Boolean), httpVersion: 'HTTP/1.1',
      headers: { Host: `${dst.name.split('-')[0]}:8080`, 'User-Agent': 'Go-http-client/1.1' },
      queryString: {}, bodySize: method === 'POST' || method === 'PUT' ? 32 : 0, headersSize: 110,
    },
    response: {
      status, statusText: STATUS_TEXT[status] ?? '', httpVersion: 'HTTP/1.1',
      headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) },
      content: { mimeType: 'application/json', size: body.length, text: body },
      bodySize: body.length, headersSize: 85,
    },
    requestSize: 110, responseSize: 85 + body.length, elapsedTime: Math.round(random() * 40 * 100) / 100,
    passed: false, failed: false, error: null,
  };
}

/** `n` items as JSON lines (JSONL), deterministic. */
export function makeHttpItemsJsonl(n: number, seed = 42): string {
  const random = rng(seed);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify(makeHttpItem(i, random)));
  return `${lines.join('\n')}\n`;
}

/** Ground truth of a stream: counts by response status. */
export function countByStatus(items: readonly HttpItem[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[String(it.response.status)] = (out[String(it.response.status)] ?? 0) + 1;
  return out;
}
