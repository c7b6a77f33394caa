/**
 * A test Kubernetes API server: the real wire protocol (HTTP + JSON + chunked
 * watch streams) for core/v1 configmaps, secrets and pods, on 127.0.0.1, so the
 * real `@kubernetes/client-node` (KubeConfig, CoreV1Api, Watch) talks to it
 * unmodified. No Kubernetes API server can run on the test machines; this is the
 * one fake the design allows, and it mirrors the real server's semantics:
 *
 * - objects carry monotonic integer `metadata.resourceVersion`s (strings), uids
 *   and creationTimestamps; lists carry the store's resourceVersion and, like the
 *   real server, their items have no `kind`/`apiVersion`;
 * - watch: `resourceVersion` unset, "" or "0" sends a synthetic ADDED per current
 *   object then live events; `resourceVersion=X` sends every event after X, an
 *   ERROR event with a 410 `Expired` Status when X is older than the retained
 *   history (see `compact()`), or a 504 `Timeout` Status (cause
 *   `ResourceVersionTooLarge`) when X is newer than the store; BOOKMARKs when
 *   `allowWatchBookmarks=true`; `sendInitialEvents=true` ends the initial ADDEDs
 *   with a BOOKMARK annotated `k8s.io/initial-events-end`; `timeoutSeconds`
 *   ends the stream; selector changes turn MODIFIED into ADDED/DELETED;
 * - writes: POST (409 AlreadyExists), PUT (404 NotFound, 409 Conflict on a stale
 *   `metadata.resourceVersion`), PATCH (merge, strategic-merge as merge, JSON
 *   patch), DELETE (preconditions, Status for configmaps/secrets, the object for
 *   pods); secrets' `stringData` is folded into base64 `data`;
 * - errors are `kind: Status` JSON with `code`, `reason`, `message`, `details`.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export type KubeKind = 'ConfigMap' | 'Secret' | 'Pod';

export interface KubeApiServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** A kubeconfig for this server (insecure, no auth). */
  kubeconfigYaml(): string;
  /** Create or replace (test side), bumps resourceVersion, emits ADDED/MODIFIED to watches. */
  put(obj: KubeObject): KubeObject;
  /** Emits DELETED. */
  remove(kind: KubeKind, namespace: string, name: string): boolean;
  get(kind: KubeKind, namespace: string, name: string): KubeObject | undefined;
  /** Abruptly destroys every open watch connection (clients must reconnect). */
  dropWatches(): void;
  /** Forgets event history: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void;
  /** The next n client writes (POST/PUT/PATCH/DELETE) fail with that Status (default 500). */
  failNextWrites(n: number, code?: 409 | 500): void;
  readonly requests: { method: string; path: string; query: string }[];
  /** Watch streams open right now (server side). */
  openWatches(): number;
  /** TCP connections open right now, idle keep-alive ones included. */
  openConnections(): number;
  close(): Promise<void>;
}

export class KubeApiServerError extends Error {
  override readonly name = 'KubeApiServerError';
}

export interface StartKubeApiServerOptions {
  /** Fixed port (e.g. to restart on the same port); random when omitted. */
  port?: number;
  /** How often an idle watch with `allowWatchBookmarks=true` gets a BOOKMARK (ms, default 5000). */
  bookmarkIntervalMs?: number;
  /** Event history kept for watch resumption (events, default 10000); older ones are compacted. */
  historyLimit?: number;
}

// ---------------------------------------------------------------------------
// Resources

interface ResourceInfo {
  kind: KubeKind;
  resource: string;
  listKind: string;
  shortNames: string[];
}

const RESOURCES: ResourceInfo[] = [
  { kind: 'ConfigMap', resource: 'configmaps', listKind: 'ConfigMapList', shortNames: ['cm'] },
  { kind: 'Secret', resource: 'secrets', listKind: 'SecretList', shortNames: [] },
  { kind: 'Pod', resource: 'pods', listKind: 'PodList', shortNames: ['po'] },
];
const BY_RESOURCE = new Map(RESOURCES.map((r) => [r.resource, r]));
const BY_KIND = new Map(RESOURCES.map((r) => [r.kind, r]));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

function clone<T>(v: T): T {
  return structuredClone(v);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------
// Status errors

class StatusError extends Error {
  override readonly name = 'StatusError';
  readonly code: number;
  readonly reason: string;
  readonly details: JsonObject | undefined;
  constructor(code: number, reason: string, message: string, details?: JsonObject) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }
  toStatus(): JsonObject {
    const s: JsonObject = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
    };
    if (this.details) s.details = this.details;
    s.code = this.code;
    return s;
  }
}

const notFound = (r: ResourceInfo, name: string) =>
  new StatusError(404, 'NotFound', `${r.resource} "${name}" not found`, { name, kind: r.resource });
const alreadyExists = (r: ResourceInfo, name: string) =>
  new StatusError(409, 'AlreadyExists', `${r.resource} "${name}" already exists`, { name, kind: r.resource });
const conflict = (r: ResourceInfo, name: string) =>
  new StatusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${r.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, kind: r.resource },
  );
const badRequest = (message: string) => new StatusError(400, 'BadRequest', message);
const invalid = (r: ResourceInfo, name: string, message: string) =>
  new StatusError(422, 'Invalid', `${r.kind} "${name}" is invalid: ${message}`, { name, kind: r.kind });
const expired = (requested: number, oldest: number) =>
  new StatusError(410, 'Expired', `too old resource version: ${requested} (${oldest})`);
const tooLarge = (requested: number, current: number) =>
  new StatusError(504, 'Timeout', `Timeout: Too large resource version: ${requested}, current: ${current}`, {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
    retryAfterSeconds: 1,
  });

// ---------------------------------------------------------------------------
// Selectors

type Predicate = (obj: KubeObject) => boolean;

function fieldValue(obj: KubeObject, field: string): string | undefined {
  let cur: unknown = obj;
  for (const part of field.split('.')) {
    if (!isObject(cur)) return undefined;
    cur = cur[part];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

const FIELD_LABELS: Record<KubeKind, string[]> = {
  ConfigMap: ['metadata.name', 'metadata.namespace'],
  Secret: ['metadata.name', 'metadata.namespace', 'type'],
  Pod: [
    'metadata.name',
    'metadata.namespace',
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ],
};

function parseFieldSelector(r: ResourceInfo, sel: string): Predicate {
  const terms: { field: string; op: '=' | '!='; value: string }[] = [];
  for (const raw of sel.split(',')) {
    const term = raw.trim();
    if (term === '') continue;
    const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${sel}'; can't understand '${term}'`);
    const field = m[1].trim();
    if (!FIELD_LABELS[r.kind].includes(field)) {
      throw badRequest(`field label not supported: ${field}`);
    }
    terms.push({ field, op: m[2] === '!=' ? '!=' : '=', value: m[3].trim() });
  }
  return (obj) =>
    terms.every((t) => {
      const v = fieldValue(obj, t.field) ?? '';
      return t.op === '=' ? v === t.value : v !== t.value;
    });
}

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(sel: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sel) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

function parseLabelSelector(sel: string): Predicate {
  const tests: ((labels: Record<string, string>) => boolean)[] = [];
  for (const term of splitTopLevel(sel)) {
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const key = m[1];
      const values = new Set(m[3].split(',').map((s) => s.trim()).filter((s) => s !== ''));
      const neg = m[2] === 'notin';
      tests.push((l) => (neg ? !(key in l) || !values.has(l[key]) : key in l && values.has(l[key])));
    } else if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term))) {
      const [, key, op, value] = m;
      tests.push((l) => (op === '!=' ? l[key] !== value : l[key] === value));
    } else if ((m = /^!\s*([\w./-]+)$/.exec(term))) {
      const key = m[1];
      tests.push((l) => !(key in l));
    } else if ((m = /^([\w./-]+)$/.exec(term))) {
      const key = m[1];
      tests.push((l) => key in l);
    } else {
      throw badRequest(`unable to parse requirement: found '${term}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  }
  return (obj) => {
    const labels = (obj.metadata.labels ?? {}) as Record<string, string>;
    return tests.every((t) => t(labels));
  };
}

// ---------------------------------------------------------------------------
// Patches

function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

function decodePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw badRequest(`invalid JSON pointer: ${ptr}`);
  return ptr
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function pointerGet(doc: Json, path: string[]): Json | undefined {
  let cur: Json | undefined = doc;
  for (const p of path) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isObject(cur)) cur = Object.hasOwn(cur, p) ? cur[p] : undefined;
    else return undefined;
  }
  return cur;
}

function pointerParent(doc: Json, path: string[], op: string): { parent: Json; key: string } {
  if (path.length === 0) throw badRequest(`jsonpatch ${op} operation does not apply: the root cannot be targeted`);
  const parent = pointerGet(doc, path.slice(0, -1));
  if (parent === undefined || (typeof parent !== 'object') || parent === null) {
    throw new StatusError(422, 'Invalid', `jsonpatch ${op} operation does not apply: doc is missing path: "/${path.join('/')}"`);
  }
  return { parent, key: path[path.length - 1] };
}

function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  let out = clone(doc);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw badRequest('json patch operations need "op" and "path"');
    }
    const op = raw.op;
    const path = decodePointer(raw.path);
    const missing = () =>
      new StatusError(422, 'Invalid', `jsonpatch ${op} operation does not apply: doc is missing path: "${String(raw.path)}"`);
    const add = (target: string[], value: Json) => {
      if (target.length === 0) {
        out = clone(value);
        return;
      }
      const { parent, key } = pointerParent(out, target, op);
      if (Array.isArray(parent)) {
        const idx = key === '-' ? parent.length : Number(key);
        if (!Number.isInteger(idx) || idx < 0 || idx > parent.length) throw missing();
        parent.splice(idx, 0, clone(value));
      } else (parent as JsonObject)[key] = clone(value);
    };
    const remove = (target: string[]): Json => {
      const { parent, key } = pointerParent(out, target, op);
      if (Array.isArray(parent)) {
        const idx = Number(key);
        if (!Number.isInteger(idx) || idx < 0 || idx >= parent.length) throw missing();
        return parent.splice(idx, 1)[0];
      }
      const obj = parent as JsonObject;
      if (!Object.hasOwn(obj, key)) throw missing();
      const v = obj[key];
      delete obj[key];
      return v;
    };
    switch (op) {
      case 'add':
        add(path, (raw.value ?? null) as Json);
        break;
      case 'remove':
        remove(path);
        break;
      case 'replace':
        if (pointerGet(out, path) === undefined) throw missing();
        if (path.length === 0) out = clone((raw.value ?? null) as Json);
        else {
          remove(path);
          add(path, (raw.value ?? null) as Json);
        }
        break;
      case 'move': {
        if (typeof raw.from !== 'string') throw badRequest('json patch move needs "from"');
        const v = remove(decodePointer(raw.from));
        add(path, v);
        break;
      }
      case 'copy': {
        if (typeof raw.from !== 'string') throw badRequest('json patch copy needs "from"');
        const v = pointerGet(out, decodePointer(raw.from));
        if (v === undefined) throw missing();
        add(path, v);
        break;
      }
      case 'test': {
        const v = pointerGet(out, path);
        if (JSON.stringify(v) !== JSON.stringify(raw.value ?? null)) {
          throw new StatusError(422, 'Invalid', `testing value ${String(raw.path)} failed`);
        }
        break;
      }
      default:
        throw badRequest(`unexpected json patch operation: ${op}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Store

interface StoredEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: string;
  /** The object after the change (for DELETED: the last state, with the deletion's resourceVersion). */
  object: KubeObject;
  /** The object before the change (MODIFIED only), for selector transitions. */
  previous?: KubeObject;
}

interface WatchConn {
  resource: ResourceInfo;
  namespace: string | undefined;
  matches: Predicate;
  bookmarks: boolean;
  res: http.ServerResponse;
  socket: Socket;
  timers: NodeJS.Timeout[];
  closed: boolean;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

// ---------------------------------------------------------------------------
// The server

const MAX_BODY_BYTES = 3 * 1024 * 1024;
const MAX_REQUEST_LOG = 10_000;

export async function startKubeApiServer(opts: StartKubeApiServerOptions = {}): Promise<KubeApiServer> {
  const bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 5000;
  const historyLimit = Math.max(1, opts.historyLimit ?? 10_000);

  let rv = 0;
  /** Watches from resourceVersions below this get 410 Expired (events after it are retained). */
  let oldestRv = 0;
  const stores = new Map<string, Map<string, KubeObject>>(RESOURCES.map((r) => [r.resource, new Map()]));
  const history: StoredEvent[] = [];
  const watches = new Set<WatchConn>();
  const requests: { method: string; path: string; query: string }[] = [];
  let failWrites = 0;
  let failCode: 409 | 500 = 500;
  let closed = false;

  // -- store operations (shared by the test side and the HTTP side) --

  function record(ev: StoredEvent): void {
    history.push(ev);
    if (history.length > historyLimit) {
      const dropped = history.splice(0, history.length - historyLimit);
      oldestRv = dropped[dropped.length - 1].rv;
    }
    for (const w of watches) deliver(w, ev);
  }

  function normalise(r: ResourceInfo, obj: KubeObject): KubeObject {
    const out = clone(obj);
    out.apiVersion = 'v1';
    out.kind = r.kind;
    if (r.kind === 'Secret') {
      const stringData = out.stringData;
      if (isObject(stringData)) {
        const data: JsonObject = isObject(out.data) ? { ...out.data } : {};
        for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(String(v)).toString('base64');
        out.data = data;
      }
      delete out.stringData;
      if (out.type === undefined) out.type = 'Opaque';
    }
    if (r.kind === 'Pod' && !isObject(out.status)) out.status = { phase: 'Pending' };
    return out;
  }

  function storeCreate(r: ResourceInfo, obj: KubeObject): KubeObject {
    const ns = obj.metadata.namespace as string;
    const stored = normalise(r, obj);
    stored.metadata = {
      ...stored.metadata,
      uid: randomUUID(),
      resourceVersion: String(++rv),
      creationTimestamp: nowTimestamp(),
    };
    stores.get(r.resource)!.set(key(ns, stored.metadata.name), stored);
    record({ rv, type: 'ADDED', resource: r.resource, object: clone(stored) });
    return clone(stored);
  }

  function storeUpdate(r: ResourceInfo, existing: KubeObject, obj: KubeObject): KubeObject {
    const ns = existing.metadata.namespace as string;
    const stored = normalise(r, obj);
    stored.metadata = {
      ...stored.metadata,
      name: existing.metadata.name,
      namespace: ns,
      uid: existing.metadata.uid,
      creationTimestamp: existing.metadata.creationTimestamp,
      resourceVersion: String(++rv),
    };
    stores.get(r.resource)!.set(key(ns, stored.metadata.name), stored);
    record({ rv, type: 'MODIFIED', resource: r.resource, object: clone(stored), previous: clone(existing) });
    return clone(stored);
  }

  function storeDelete(r: ResourceInfo, existing: KubeObject): KubeObject {
    const ns = existing.metadata.namespace as string;
    stores.get(r.resource)!.delete(key(ns, existing.metadata.name));
    const gone = clone(existing);
    gone.metadata.resourceVersion = String(++rv);
    record({ rv, type: 'DELETED', resource: r.resource, object: clone(gone) });
    return gone;
  }

  function lookup(r: ResourceInfo, ns: string, name: string): KubeObject | undefined {
    return stores.get(r.resource)!.get(key(ns, name));
  }

  // -- watches --

  function writeEvent(w: WatchConn, type: string, object: unknown): void {
    if (w.closed) return;
    w.res.write(JSON.stringify({ type, object }) + '\n');
  }

  function bookmark(w: WatchConn, annotations?: Record<string, string>): void {
    const metadata: JsonObject = { resourceVersion: String(rv) };
    if (annotations) metadata.annotations = annotations;
    writeEvent(w, 'BOOKMARK', { kind: w.resource.kind, apiVersion: 'v1', metadata });
  }

  function deliver(w: WatchConn, ev: StoredEvent): void {
    if (w.closed || ev.resource !== w.resource.resource) return;
    const inScope = (o: KubeObject | undefined) =>
      o !== undefined && (w.namespace === undefined || o.metadata.namespace === w.namespace) && w.matches(o);
    const now = inScope(ev.object);
    if (ev.type === 'MODIFIED') {
      const before = inScope(ev.previous);
      if (now && before) writeEvent(w, 'MODIFIED', ev.object);
      else if (now) writeEvent(w, 'ADDED', ev.object);
      else if (before) writeEvent(w, 'DELETED', ev.object);
    } else if (now) writeEvent(w, ev.type, ev.object);
  }

  function endWatch(w: WatchConn, abrupt: boolean): void {
    if (w.closed) return;
    w.closed = true;
    for (const t of w.timers) clearTimeout(t);
    watches.delete(w);
    if (abrupt) w.socket.destroy();
    else w.res.end();
  }

  // -- HTTP --

  function send(res: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      'Audit-Id': randomUUID(),
      'Cache-Control': 'no-cache, private',
    });
    res.end(text);
  }

  function sendStatus(res: http.ServerResponse, err: StatusError): void {
    send(res, err.code, err.toStatus());
  }

  async function readBody(req: http.IncomingMessage): Promise<Json | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw new StatusError(413, 'RequestEntityTooLarge', 'the request body is too large');
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as Json;
    } catch (cause) {
      throw badRequest(`the request body is not valid JSON: ${(cause as Error).message}`);
    }
  }

  function parseRv(raw: string | null, what: string): number | undefined {
    if (raw === null || raw === '' || raw === '0') return undefined;
    if (!/^\d+$/.test(raw)) throw badRequest(`invalid ${what}: "${raw}" is not a resource version`);
    return Number(raw);
  }

  function predicates(r: ResourceInfo, q: URLSearchParams): Predicate {
    const fs = q.get('fieldSelector');
    const ls = q.get('labelSelector');
    const f = fs ? parseFieldSelector(r, fs) : () => true;
    const l = ls ? parseLabelSelector(ls) : () => true;
    return (o) => f(o) && l(o);
  }

  function currentItems(r: ResourceInfo, ns: string | undefined, matches: Predicate): KubeObject[] {
    return [...stores.get(r.resource)!.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o)
      .filter((o) => (ns === undefined || o.metadata.namespace === ns) && matches(o));
  }

  function handleList(r: ResourceInfo, ns: string | undefined, q: URLSearchParams, res: http.ServerResponse): void {
    const matches = predicates(r, q);
    const requested = parseRv(q.get('resourceVersion'), 'resourceVersion');
    const match = q.get('resourceVersionMatch');
    if (requested !== undefined && requested > rv) throw tooLarge(requested, rv);
    if (match === 'Exact') {
      if (requested === undefined) throw badRequest('resourceVersionMatch "Exact" needs a resourceVersion');
      // Only the current state is kept: an older exact snapshot is gone (as after etcd compaction).
      if (requested !== rv) throw expired(requested, rv);
    }
    let items = currentItems(r, ns, matches);
    const limitRaw = q.get('limit');
    const limit = limitRaw ? Number(limitRaw) : 0;
    const cont = q.get('continue');
    let listRv = rv;
    if (cont) {
      let token: { rv: number; start: string };
      try {
        token = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as { rv: number; start: string };
      } catch (cause) {
        throw badRequest(`invalid continue token: ${(cause as Error).message}`);
      }
      if (token.rv < oldestRv) {
        throw new StatusError(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      }
      listRv = token.rv;
      items = items.filter((o) => key(o.metadata.namespace as string, o.metadata.name) > token.start);
    }
    const metadata: JsonObject = { resourceVersion: String(listRv) };
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      const page = items.slice(0, limit);
      const last = page[page.length - 1];
      metadata.continue = Buffer.from(
        JSON.stringify({ rv: listRv, start: key(last.metadata.namespace as string, last.metadata.name) }),
      ).toString('base64url');
      metadata.remainingItemCount = items.length - limit;
      items = page;
    }
    send(res, 200, {
      kind: r.listKind,
      apiVersion: 'v1',
      metadata,
      // Like the real server, list items carry no kind/apiVersion.
      items: items.map((o) => {
        const { kind: _k, apiVersion: _a, ...rest } = o;
        return rest;
      }),
    });
  }

  function handleWatch(
    r: ResourceInfo,
    ns: string | undefined,
    name: string | undefined,
    q: URLSearchParams,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    let matches = predicates(r, q);
    if (name !== undefined) {
      const byName = matches;
      matches = (o) => o.metadata.name === name && byName(o);
    }
    const requested = parseRv(q.get('resourceVersion'), 'resourceVersion');
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    const sendInitial = q.get('sendInitialEvents') === 'true';
    const timeoutRaw = q.get('timeoutSeconds');
    const timeoutSeconds = timeoutRaw ? Number(timeoutRaw) : 0;

    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Audit-Id': randomUUID(),
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    const socket = req.socket;
    const w: WatchConn = { resource: r, namespace: ns, matches, bookmarks, res, socket, timers: [], closed: false };

    if (requested !== undefined && requested < oldestRv) {
      writeEvent(w, 'ERROR', expired(requested, oldestRv).toStatus());
      res.end();
      return;
    }
    if (requested !== undefined && requested > rv) {
      writeEvent(w, 'ERROR', tooLarge(requested, rv).toStatus());
      res.end();
      return;
    }
    watches.add(w);
    res.on('close', () => endWatch(w, false));
    res.on('error', () => endWatch(w, true));

    if (requested === undefined || sendInitial) {
      // "Get state and start at most recent": a synthetic ADDED per current object.
      for (const o of currentItems(r, ns, matches)) writeEvent(w, 'ADDED', o);
      if (sendInitial && bookmarks) bookmark(w, { 'k8s.io/initial-events-end': 'true' });
    } else {
      for (const ev of history) if (ev.rv > requested) deliver(w, ev);
    }

    if (bookmarks) {
      const tick = (): void => {
        if (w.closed) return;
        bookmark(w);
        w.timers[0] = setTimeout(tick, bookmarkIntervalMs);
      };
      w.timers[0] = setTimeout(tick, bookmarkIntervalMs);
    }
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      w.timers[1] = setTimeout(() => {
        if (w.bookmarks) bookmark(w);
        endWatch(w, false);
      }, timeoutSeconds * 1000);
    }
  }

  async function handleCreate(r: ResourceInfo, ns: string, req: http.IncomingMessage, res: http.ServerResponse) {
    const body = await readBody(req);
    if (!isObject(body) || !isObject(body.metadata)) throw badRequest(`${r.kind} in body must have metadata`);
    const meta = body.metadata;
    if (meta.namespace !== undefined && meta.namespace !== ns) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if ((meta.name === undefined || meta.name === '') && typeof meta.generateName === 'string') {
      meta.name = meta.generateName + randomUUID().replace(/-/g, '').slice(0, 5);
    }
    if (typeof meta.name !== 'string' || meta.name === '') {
      throw invalid(r, '', 'metadata.name: Required value: name or generateName is required');
    }
    if (body.kind !== undefined && body.kind !== r.kind) throw badRequest(`kind ${String(body.kind)} does not match ${r.kind}`);
    if (lookup(r, ns, meta.name)) throw alreadyExists(r, meta.name);
    const obj = body as unknown as KubeObject;
    obj.metadata.namespace = ns;
    delete obj.metadata.resourceVersion;
    send(res, 201, storeCreate(r, obj));
  }

  async function handleReplace(
    r: ResourceInfo,
    ns: string,
    name: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ) {
    const body = await readBody(req);
    if (!isObject(body) || !isObject(body.metadata)) throw badRequest(`${r.kind} in body must have metadata`);
    const meta = body.metadata;
    if (meta.name !== name) {
      throw badRequest('the name of the object (' + String(meta.name) + ') does not match the name on the URL (' + name + ')');
    }
    if (meta.namespace !== undefined && meta.namespace !== ns) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const existing = lookup(r, ns, name);
    if (!existing) throw notFound(r, name);
    const want = meta.resourceVersion;
    if (want !== undefined && want !== '' && want !== existing.metadata.resourceVersion) throw conflict(r, name);
    if (meta.uid !== undefined && meta.uid !== '' && meta.uid !== existing.metadata.uid) {
      throw new StatusError(409, 'Conflict', `Precondition failed: UID in precondition: ${String(meta.uid)}, UID in object meta: ${existing.metadata.uid}`, { name, kind: r.resource });
    }
    send(res, 200, storeUpdate(r, existing, body as unknown as KubeObject));
  }

  async function handlePatch(
    r: ResourceInfo,
    ns: string,
    name: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ) {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const body = await readBody(req);
    const existing = lookup(r, ns, name);
    if (!existing) throw notFound(r, name);
    let patched: Json;
    if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
      if (!isObject(body)) throw badRequest('a merge patch must be a JSON object');
      patched = mergePatch(existing as unknown as Json, body);
      const patchMeta = body.metadata;
      if (isObject(patchMeta) && typeof patchMeta.resourceVersion === 'string') {
        if (patchMeta.resourceVersion !== existing.metadata.resourceVersion) throw conflict(r, name);
      }
    } else if (type === 'application/json-patch+json') {
      patched = jsonPatch(existing as unknown as Json, body ?? null);
      const patchedRv = isObject(patched) && isObject(patched.metadata) ? patched.metadata.resourceVersion : undefined;
      if (typeof patchedRv === 'string' && patchedRv !== existing.metadata.resourceVersion) throw conflict(r, name);
    } else if (type === 'application/apply-patch+yaml') {
      throw new StatusError(415, 'UnsupportedMediaType', 'server-side apply is not supported by this test server');
    } else {
      throw new StatusError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
      );
    }
    if (!isObject(patched) || !isObject(patched.metadata)) throw invalid(r, name, 'metadata: Required value');
    if (patched.metadata.name !== name || (patched.metadata.namespace ?? ns) !== ns) {
      throw badRequest('a patch cannot change the name or namespace of an object');
    }
    send(res, 200, storeUpdate(r, existing, patched as unknown as KubeObject));
  }

  async function handleDelete(
    r: ResourceInfo,
    ns: string,
    name: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ) {
    const body = await readBody(req);
    const existing = lookup(r, ns, name);
    if (!existing) throw notFound(r, name);
    const pre = isObject(body) && isObject(body.preconditions) ? body.preconditions : undefined;
    if (pre && typeof pre.resourceVersion === 'string' && pre.resourceVersion !== existing.metadata.resourceVersion) {
      throw new StatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${r.resource} "${name}": Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
        { name, kind: r.resource },
      );
    }
    if (pre && typeof pre.uid === 'string' && pre.uid !== existing.metadata.uid) {
      throw new StatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${r.resource} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`,
        { name, kind: r.resource },
      );
    }
    const gone = storeDelete(r, existing);
    if (r.kind === 'Pod') send(res, 200, gone);
    else {
      send(res, 200, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name, kind: r.resource, uid: existing.metadata.uid ?? '' },
      });
    }
  }

  function discovery(path: string, res: http.ServerResponse): boolean {
    if (path === '/version') {
      send(res, 200, {
        major: '1',
        minor: '33',
        gitVersion: 'v1.33.0-wirescript-test',
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2025-01-01T00:00:00Z',
        goVersion: 'go1.24.0',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
      return true;
    }
    if (path === '/healthz' || path === '/readyz' || path === '/livez') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return true;
    }
    if (path === '/api') {
      send(res, 200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
      });
      return true;
    }
    if (path === '/api/v1') {
      send(res, 200, {
        kind: 'APIResourceList',
        groupVersion: 'v1',
        resources: RESOURCES.map((r) => ({
          name: r.resource,
          singularName: r.kind.toLowerCase(),
          namespaced: true,
          kind: r.kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
          shortNames: r.shortNames,
        })),
      });
      return true;
    }
    return false;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (requests.length >= MAX_REQUEST_LOG) requests.splice(0, requests.length - MAX_REQUEST_LOG + 1);
    requests.push({ method, path, query: url.search.replace(/^\?/, '') });
    const q = url.searchParams;

    if (method === 'GET' && discovery(path, res)) return;

    // /api/v1/{resource} | /api/v1/namespaces/{ns}/{resource}[/{name}]
    const parts = path.split('/').slice(1).map(decodeURIComponent);
    let ns: string | undefined;
    let resource: string | undefined;
    let name: string | undefined;
    if (parts[0] === 'api' && parts[1] === 'v1') {
      if (parts.length === 3) resource = parts[2];
      else if (parts[2] === 'namespaces' && (parts.length === 5 || parts.length === 6)) {
        ns = parts[3];
        resource = parts[4];
        name = parts[5];
      }
    }
    const r = resource !== undefined ? BY_RESOURCE.get(resource) : undefined;
    if (!r) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');

    const write = method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE';
    if (write && failWrites > 0) {
      failWrites--;
      if (failCode === 409) throw conflict(r, name ?? 'unknown');
      throw new StatusError(500, 'InternalError', 'Internal error occurred: injected failure (failNextWrites)');
    }

    const isWatch = q.get('watch') === 'true' || q.get('watch') === '1';
    switch (method) {
      case 'GET':
        if (isWatch) return handleWatch(r, ns, name, q, req, res);
        if (name !== undefined) {
          const obj = lookup(r, ns as string, name);
          if (!obj) throw notFound(r, name);
          return send(res, 200, obj);
        }
        return handleList(r, ns, q, res);
      case 'POST':
        if (ns === undefined || name !== undefined) break;
        return handleCreate(r, ns, req, res);
      case 'PUT':
        if (ns === undefined || name === undefined) break;
        return handleReplace(r, ns, name, req, res);
      case 'PATCH':
        if (ns === undefined || name === undefined) break;
        return handlePatch(r, ns, name, req, res);
      case 'DELETE':
        if (ns === undefined || name === undefined) break;
        return handleDelete(r, ns, name, req, res);
    }
    throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status =
        err instanceof StatusError
          ? err
          : new StatusError(500, 'InternalError', `Internal error occurred: ${(err as Error)?.message ?? String(err)}`);
      sendStatus(res, status);
    });
  });
  server.keepAliveTimeout = 5000;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new KubeApiServerError(`cannot listen on 127.0.0.1:${opts.port ?? 0}: ${err.message}`, { cause: err })),
    );
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  function resourceOf(kind: string): ResourceInfo {
    const r = BY_KIND.get(kind as KubeKind);
    if (!r) throw new KubeApiServerError(`unsupported kind ${JSON.stringify(kind)} (ConfigMap, Secret or Pod)`);
    return r;
  }

  return {
    url,
    requests,
    kubeconfigYaml() {
      return [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: wirescript-test',
        '  cluster:',
        `    server: ${url}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: wirescript-test',
        '  user: {}',
        'contexts:',
        '- name: wirescript-test',
        '  context:',
        '    cluster: wirescript-test',
        '    user: wirescript-test',
        '    namespace: default',
        'current-context: wirescript-test',
        '',
      ].join('\n');
    },
    put(obj) {
      const r = resourceOf(obj.kind);
      if (!obj.metadata?.name) throw new KubeApiServerError('put: metadata.name is required');
      const ns = obj.metadata.namespace ?? 'default';
      const input = clone(obj);
      input.metadata.namespace = ns;
      const existing = lookup(r, ns, obj.metadata.name);
      return existing ? storeUpdate(r, existing, input) : storeCreate(r, input);
    },
    remove(kind, namespace, name) {
      const r = resourceOf(kind);
      const existing = lookup(r, namespace, name);
      if (!existing) return false;
      storeDelete(r, existing);
      return true;
    },
    get(kind, namespace, name) {
      const o = lookup(resourceOf(kind), namespace, name);
      return o ? clone(o) : undefined;
    },
    dropWatches() {
      for (const w of [...watches]) endWatch(w, true);
    },
    compact() {
      history.length = 0;
      oldestRv = rv;
    },
    failNextWrites(n, code = 500) {
      failWrites = Math.max(0, Math.floor(n));
      failCode = code;
    },
    openWatches() {
      return watches.size;
    },
    openConnections() {
      return sockets.size;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const w of [...watches]) endWatch(w, true);
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
    },
  };
}
