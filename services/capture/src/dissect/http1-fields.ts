/**
 * Request-target, query string and cookie helpers for the HTTP/1 items.
 * Keys come from the wire, so objects are written with setOwn(): a key such
 * as "__proto__" becomes a plain property instead of changing the prototype,
 * and inherited names ("constructor") are never mistaken for earlier values.
 */

/** Sets obj[key] = value as an own, enumerable property whatever the key is. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** Own value of obj[key] (undefined for inherited names such as "constructor"). */
function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/**
 * Path (no query, no fragment) and raw query of a request target. Absolute-form
 * targets (proxies: "http://host/p?q") give their path; authority-form
 * (CONNECT "host:443") and "*" are their own path.
 */
export function splitTarget(target: string): { path: string; query: string } {
  let start = 0;
  const c0 = target.charCodeAt(0);
  if (c0 !== 47 /* / */ && c0 !== 42 /* * */) {
    const scheme = target.indexOf('://');
    if (scheme > 0 && scheme < 16) {
      const slash = target.indexOf('/', scheme + 3);
      const q0 = target.indexOf('?', scheme + 3);
      if (slash < 0 || (q0 >= 0 && q0 < slash)) {
        // "http://host" or "http://host?x": the path is "/"
        return { path: '/', query: q0 >= 0 ? cutFragment(target.slice(q0 + 1)) : '' };
      }
      start = slash;
    }
  }
  const q = target.indexOf('?', start);
  const h = target.indexOf('#', start);
  if (h >= 0 && (q < 0 || h < q)) return { path: target.slice(start, h), query: '' };
  if (q < 0) return { path: start === 0 ? target : target.slice(start), query: '' };
  return { path: target.slice(start, q), query: cutFragment(target.slice(q + 1)) };
}

function cutFragment(s: string): string {
  const h = s.indexOf('#');
  return h < 0 ? s : s.slice(0, h);
}

/** "/a/b/" -> ["a", "b"] (empty parts dropped, not decoded). */
export function pathSegments(path: string): string[] {
  const out: string[] = [];
  let from = 0;
  const n = path.length;
  while (from <= n) {
    let slash = path.indexOf('/', from);
    if (slash < 0) slash = n;
    if (slash > from) out.push(path.slice(from, slash));
    from = slash + 1;
  }
  return out;
}

/** Percent-decoding as a form would ('+' is a space); malformed escapes are kept as sent. */
export function formDecode(s: string): string {
  let hasPlus = false;
  let hasPct = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 43) hasPlus = true;
    else if (c === 37) hasPct = true;
  }
  if (hasPlus) s = s.replaceAll('+', ' ');
  if (!hasPct) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return lenientDecode(s);
  }
}

/** Decodes the valid %XX escapes (as UTF-8 bytes) and keeps everything else. */
function lenientDecode(s: string): string {
  const bytes: number[] = [];
  const src = Buffer.from(s, 'utf8');
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === 37 && i + 2 < src.length && isHex(src[i + 1]) && isHex(src[i + 2])) {
      bytes.push(parseInt(String.fromCharCode(src[i + 1], src[i + 2]), 16));
      i += 2;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102));
}

/** "a=1&b=2&a=3&c" -> { a: ["1", "3"], b: "2", c: "" } (names and values decoded). */
export function parseQuery(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (query.length === 0) return out;
  let from = 0;
  const n = query.length;
  while (from <= n) {
    let amp = query.indexOf('&', from);
    if (amp < 0) amp = n;
    if (amp > from) {
      const eq = query.indexOf('=', from);
      const hasEq = eq >= 0 && eq < amp;
      const name = formDecode(query.slice(from, hasEq ? eq : amp));
      const value = hasEq ? formDecode(query.slice(eq + 1, amp)) : '';
      const prev = own(out, name);
      if (prev === undefined) setOwn(out, name, value);
      else if (Array.isArray(prev)) prev.push(value);
      else setOwn(out, name, [prev as string, value]);
    }
    from = amp + 1;
  }
  return out;
}

/** Cookie header ("a=1; b=2") -> { a: "1", b: "2" }; the first of repeated names wins, values as sent. */
export function parseCookies(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (header.length === 0) return out;
  let from = 0;
  const n = header.length;
  while (from < n) {
    let semi = header.indexOf(';', from);
    if (semi < 0) semi = n;
    const eq = header.indexOf('=', from);
    if (eq >= 0 && eq < semi) {
      const name = header.slice(from, eq).trim();
      if (name.length > 0 && own(out, name) === undefined) setOwn(out, name, header.slice(eq + 1, semi).trim());
    }
    from = semi + 1;
  }
  return out;
}

/** Set-Cookie lines -> { name: value } (attributes after the first ';' dropped; the last of a name wins, as a browser would keep it). */
export function parseSetCookies(lines: readonly string[] | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (lines === null) return out;
  for (const line of lines) {
    let semi = line.indexOf(';');
    if (semi < 0) semi = line.length;
    const eq = line.indexOf('=');
    if (eq < 0 || eq > semi) continue;
    const name = line.slice(0, eq).trim();
    if (name.length > 0) setOwn(out, name, line.slice(eq + 1, semi).trim());
  }
  return out;
}
