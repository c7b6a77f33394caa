/**
 * Projection straight from JSON text: walks the item's text once, copying the
 * raw text of the wanted values and skipping the rest without building any
 * object. On a ~1 KB item this is several times cheaper than JSON.parse +
 * project + JSON.stringify (V8's parse has to build every object and string of
 * the item, including bodies nobody reads).
 *
 * Returns null when the text is not a well-formed JSON object; the caller then
 * falls back to JSON.parse to produce the error. Strings in skipped parts are
 * only checked for termination (a raw control character inside one is not
 * rejected); wanted values are re-parsed in the VM, and a malformed batch there
 * sends the engine back to the strict path.
 */
import type { ProjectionTree } from './projection.ts';

let src = '';
let pos = 0;
let end = 0;

function ws(): void {
  while (pos < end) {
    const c = src.charCodeAt(pos);
    if (c === 32 || c === 10 || c === 13 || c === 9) pos++;
    else return;
  }
}

/** At an opening quote: moves past the closing quote. */
function skipString(): boolean {
  let i = pos + 1;
  for (;;) {
    const q = src.indexOf('"', i);
    if (q < 0) return false;
    let b = q - 1;
    while (b > pos && src.charCodeAt(b) === 92) b--;
    if (((q - 1 - b) & 1) === 0) {
      pos = q + 1;
      return true;
    }
    i = q + 1;
  }
}

function literal(word: string): boolean {
  if (src.startsWith(word, pos)) {
    pos += word.length;
    return true;
  }
  return false;
}

function skipValue(): boolean {
  ws();
  const c = src.charCodeAt(pos);
  if (c === 34) return skipString();
  if (c === 123 || c === 91) {
    const close = c === 123 ? 125 : 93;
    pos++;
    ws();
    if (src.charCodeAt(pos) === close) {
      pos++;
      return true;
    }
    for (;;) {
      ws();
      if (c === 123) {
        if (src.charCodeAt(pos) !== 34 || !skipString()) return false;
        ws();
        if (src.charCodeAt(pos) !== 58) return false;
        pos++;
      }
      if (!skipValue()) return false;
      ws();
      const d = src.charCodeAt(pos++);
      if (d === 44) continue;
      return d === close;
    }
  }
  if (c === 116) return literal('true');
  if (c === 102) return literal('false');
  if (c === 110) return literal('null');
  if (c === 45 || (c >= 48 && c <= 57)) {
    pos++;
    while (pos < end) {
      const d = src.charCodeAt(pos);
      if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) pos++;
      else break;
    }
    return true;
  }
  return false;
}

/** A projection tree flattened for matching keys in place, without slicing them out. */
interface Matcher {
  keys: string[];
  /** JSON text of each key, for the output. */
  quoted: string[];
  subs: (Matcher | true)[];
}

const matchers = new WeakMap<ProjectionTree, Matcher>();

function matcherOf(tree: ProjectionTree): Matcher {
  let m = matchers.get(tree);
  if (m === undefined) {
    m = { keys: [], quoted: [], subs: [] };
    for (const [k, sub] of tree) {
      m.keys.push(k);
      m.quoted.push(JSON.stringify(k));
      m.subs.push(sub === true ? true : matcherOf(sub));
    }
    matchers.set(tree, m);
  }
  return m;
}

/** Index of the wanted key whose text is src[start, stop), or -1. */
function findKey(m: Matcher, start: number, stop: number): number {
  const len = stop - start;
  for (let i = 0; i < m.keys.length; i++) {
    const k = m.keys[i];
    if (k.length === len && src.startsWith(k, start)) return i;
  }
  return -1;
}

/** At '{': the projected object's JSON text, or null when malformed. */
function projectObject(m: Matcher): string | null {
  pos++;
  let found: number[] | null = null;
  let values: string[] | null = null;
  ws();
  if (src.charCodeAt(pos) === 125) {
    pos++;
    return '{}';
  }
  for (;;) {
    ws();
    if (src.charCodeAt(pos) !== 34) return null;
    const kStart = pos;
    // Keys are short: scan them char by char, noting escapes.
    let escaped = false;
    let k = pos + 1;
    for (; k < end; k++) {
      const c = src.charCodeAt(k);
      if (c === 34) break;
      if (c === 92) {
        escaped = true;
        k++;
      }
    }
    if (k >= end) return null;
    pos = k + 1;
    let which: number;
    if (escaped) {
      let key: string;
      try {
        key = JSON.parse(src.slice(kStart, pos)) as string;
      } catch {
        return null;
      }
      which = m.keys.indexOf(key);
    } else {
      which = findKey(m, kStart + 1, k);
    }
    ws();
    if (src.charCodeAt(pos) !== 58) return null;
    pos++;
    ws();
    if (which < 0) {
      if (!skipValue()) return null;
    } else {
      const sub = m.subs[which];
      let text: string | null;
      if (sub !== true && src.charCodeAt(pos) === 123) {
        text = projectObject(sub);
      } else {
        const vStart = pos;
        text = skipValue() ? src.slice(vStart, pos) : null;
      }
      if (text === null) return null;
      found ??= [];
      values ??= [];
      // Duplicate keys: the last one wins, as in JSON.parse.
      const at = found.indexOf(which);
      if (at >= 0) {
        found.splice(at, 1);
        values.splice(at, 1);
      }
      found.push(which);
      values.push(text);
    }
    ws();
    const d = src.charCodeAt(pos++);
    if (d === 44) continue;
    if (d !== 125) return null;
    break;
  }
  if (found === null) return '{}';
  let out = '{';
  for (let i = 0; i < found.length; i++) {
    if (i > 0) out += ',';
    out += m.quoted[found[i]] + ':' + values![i];
  }
  return out + '}';
}

/** The projection of a JSON object text, as JSON text; null when the text is not a well-formed object. */
export function projectJsonText(text: string, tree: ProjectionTree): string | null {
  src = text;
  pos = 0;
  end = text.length;
  try {
    ws();
    if (src.charCodeAt(pos) !== 123) return null;
    const out = projectObject(matcherOf(tree));
    if (out === null) return null;
    ws();
    return pos === end ? out : null;
  } catch {
    // Adversarially deep nesting: let the strict path report it.
    return null;
  } finally {
    src = '';
  }
}
