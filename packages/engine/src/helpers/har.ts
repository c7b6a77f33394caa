/**
 * HAR 1.2 from Kubeshark-shaped HTTP items (wrapper.buildHAR). Items of other
 * protocols are skipped: HAR describes HTTP exchanges only.
 */

interface HarNameValue { name: string; value: string }

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Kubeshark items carry headers/query/cookies either as a map or as [{name, value}]. */
function nameValues(v: unknown): HarNameValue[] {
  if (Array.isArray(v)) {
    return v.filter(isObj).map((e) => ({ name: String(e.name ?? ''), value: String(e.value ?? '') }));
  }
  if (isObj(v)) {
    const out: HarNameValue[] = [];
    for (const [name, value] of Object.entries(v)) {
      if (Array.isArray(value)) for (const x of value) out.push({ name, value: String(x) });
      else out.push({ name, value: value === null || value === undefined ? '' : String(value) });
    }
    return out;
  }
  return [];
}

function num(v: unknown, dflt = -1): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : dflt;
}

function headerValue(headers: HarNameValue[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find((h) => h.name.toLowerCase() === lower)?.value;
}

function absoluteUrl(item: Json, req: Json, headers: HarNameValue[]): string {
  const raw = String(req.url ?? req.targetUri ?? req.path ?? '/');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) return raw;
  const dst = isObj(item.dst) ? item.dst : {};
  const host = headerValue(headers, 'host') ?? headerValue(headers, ':authority') ??
    (dst.ip ? `${String(dst.ip)}${dst.port ? `:${String(dst.port)}` : ''}` : 'unknown');
  const scheme = headerValue(headers, ':scheme') ?? 'http';
  return `${scheme}://${host}${raw.startsWith('/') ? raw : `/${raw}`}`;
}

function startedDateTime(item: Json): string {
  if (typeof item.startTime === 'string' && item.startTime !== '') return item.startTime;
  const ts = num(item.timestamp, NaN);
  return new Date(Number.isFinite(ts) ? ts : 0).toISOString();
}

function httpVersion(v: unknown, fallback: string): string {
  const s = String(v ?? '');
  if (s === '') return fallback;
  return s.toUpperCase().startsWith('HTTP') ? s : `HTTP/${s}`;
}

export function buildHar(items: unknown, creatorVersion = '0.1.0'): Json {
  if (!Array.isArray(items)) throw new TypeError('wrapper.buildHAR(items): items must be an array');
  const entries: Json[] = [];
  for (const item of items) {
    if (!isObj(item) || !isObj(item.request)) continue;
    const proto = isObj(item.protocol) ? item.protocol : {};
    if (proto.name !== undefined && proto.name !== 'http') continue;
    const req = item.request;
    const res = isObj(item.response) ? item.response : {};
    const reqHeaders = nameValues(req.headers);
    const resHeaders = nameValues(res.headers);
    const content = isObj(res.content) ? res.content : {};
    const post = isObj(req.postData) ? req.postData : undefined;
    const elapsed = Math.max(0, num(item.elapsedTime, 0));
    const entry: Json = {
      startedDateTime: startedDateTime(item),
      time: elapsed,
      request: {
        method: String(req.method ?? 'GET'),
        url: absoluteUrl(item, req, reqHeaders),
        httpVersion: httpVersion(req.httpVersion, String(proto.version ? `HTTP/${String(proto.version)}` : 'HTTP/1.1')),
        cookies: nameValues(req.cookies),
        headers: reqHeaders,
        queryString: nameValues(req.queryString),
        headersSize: num(req.headersSize),
        bodySize: num(req.bodySize),
        ...(post ? { postData: { mimeType: String(post.mimeType ?? ''), text: String(post.text ?? '') } } : {}),
      },
      response: {
        status: num(res.status, 0),
        statusText: String(res.statusText ?? ''),
        httpVersion: httpVersion(res.httpVersion, 'HTTP/1.1'),
        cookies: nameValues(res.cookies),
        headers: resHeaders,
        content: {
          size: num(content.size, 0),
          mimeType: String(content.mimeType ?? headerValue(resHeaders, 'content-type') ?? ''),
          ...(content.text !== undefined ? { text: String(content.text) } : {}),
          ...(content.encoding ? { encoding: String(content.encoding) } : {}),
        },
        redirectURL: String(res.redirectURL ?? headerValue(resHeaders, 'location') ?? ''),
        headersSize: num(res.headersSize),
        bodySize: num(res.bodySize),
      },
      cache: {},
      timings: { send: 0, wait: elapsed, receive: 0 },
    };
    const dst = isObj(item.dst) ? item.dst : undefined;
    if (dst?.ip) entry.serverIPAddress = String(dst.ip);
    if (item.stream !== undefined) entry.connection = String(item.stream);
    entries.push(entry);
  }
  return { log: { version: '1.2', creator: { name: 'wirescript', version: creatorVersion }, pages: [], entries } };
}
