/**
 * List + watch with resume, 410 re-list and backoff (what client-go's reflector
 * does), on the real @kubernetes/client-node: the LIST goes through the
 * client's own HTTP layer (RequestContext + KubeConfig.applySecurityAuthentication
 * + IsomorphicFetchHttpLibrary, i.e. the same undici fetch and auth the generated
 * APIs use) and the WATCH through its `Watch` class. Both hand over the objects
 * as the server sent them (plain JSON: timestamps stay strings), so onSync items
 * and onEvent objects have the same shape.
 */
import {
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  RequestContext,
  Watch,
  type KubeConfig,
} from '@kubernetes/client-node';

/** A LIST or WATCH failed; `code`/`reason` come from the server's Status when there was one. */
export class WatchResourceError extends Error {
  override readonly name = 'WatchResourceError';
  readonly code: number | undefined;
  readonly reason: string | undefined;
  constructor(message: string, opts: { cause?: unknown; code?: number; reason?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = opts.code;
    this.reason = opts.reason;
  }
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: T;
}

export interface WatchOptions<T> {
  /** e.g. '/api/v1/namespaces/wirescript/configmaps' or '/api/v1/pods' */
  path: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** The full state after every (re)list. */
  onSync(items: T[], resourceVersion: string): void;
  /** Each change between lists. */
  onEvent(e: WatchEvent<T>): void;
  /** Reported, never thrown: the watcher keeps going. */
  onError?(err: Error): void;
  /** Reconnect backoff with jitter (default 500 ms .. 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
}

export interface ResourceWatcherStats {
  lists: number;
  watches: number;
  events: number;
  reconnects: number;
  gone410: number;
  errors: number;
}

export interface ResourceWatcher {
  /** Resolves when the first list is done (onSync called); rejects if stop() comes first. */
  readonly synced: Promise<void>;
  readonly stats: ResourceWatcherStats;
  stop(): Promise<void>;
}

interface KubeStatus {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
  details?: { causes?: { reason?: string; message?: string }[] };
}

interface ListBody {
  kind?: string;
  apiVersion?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: Record<string, unknown>[];
}

type WatchOutcome =
  | { kind: 'ended'; events: number } // the server closed the stream (timeoutSeconds) or the client's inactivity timer fired
  | { kind: 'relist'; events: number; status: KubeStatus } // 410 Gone / resource version too large
  | { kind: 'error'; events: number; error: Error };

const LIST_PAGE_SIZE = 500;
const MAX_LIST_PAGES = 10_000;
/** Server-side watch timeout, randomised per watch like client-go (5..10 min). */
const WATCH_TIMEOUT_MIN_S = 300;
/** A watch that lasted this long counts as healthy: the backoff starts over. */
const HEALTHY_WATCH_MS = 10_000;

function isStatus(v: unknown): v is KubeStatus {
  return typeof v === 'object' && v !== null && (v as KubeStatus).kind === 'Status';
}

function isGone(s: KubeStatus): boolean {
  return s.code === 410 || s.reason === 'Expired' || s.reason === 'Gone';
}

/** The server cannot serve a resourceVersion newer than its own (e.g. after an API server restore): re-list. */
function isTooLarge(s: KubeStatus): boolean {
  return (
    (s.code === 504 || s.code === 500) &&
    (s.details?.causes ?? []).some((c) => c.reason === 'ResourceVersionTooLarge' || /too large resource version/i.test(c.message ?? ''))
  ) || /too large resource version/i.test(s.message ?? '');
}

function errorOf(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function describe(err: unknown): string {
  const e = errorOf(err);
  const cause = (e as { cause?: unknown }).cause;
  const code = (e as { code?: unknown }).code;
  const detail = cause instanceof Error ? `: ${cause.message}` : typeof code === 'string' ? ` (${code})` : '';
  return `${e.message}${detail}`;
}

export function watchResource<T extends { metadata?: { resourceVersion?: string } }>(
  kc: KubeConfig,
  opts: WatchOptions<T>,
): ResourceWatcher {
  const initialMs = Math.max(1, opts.backoff?.initialMs ?? 500);
  const maxMs = Math.max(initialMs, opts.backoff?.maxMs ?? 30_000);
  const stats: ResourceWatcherStats = { lists: 0, watches: 0, events: 0, reconnects: 0, gone410: 0, errors: 0 };
  const http = new IsomorphicFetchHttpLibrary();
  const stopper = new AbortController();

  let resolveSynced!: () => void;
  let rejectSynced!: (err: Error) => void;
  let isSynced = false;
  const synced = new Promise<void>((resolve, reject) => {
    resolveSynced = resolve;
    rejectSynced = reject;
  });
  synced.catch(() => {}); // a watcher stopped before syncing must not cause an unhandled rejection

  let watchCtrl: AbortController | undefined;

  function report(err: Error): void {
    stats.errors++;
    try {
      opts.onError?.(err);
    } catch {
      // a throwing onError must not stop the watcher
    }
  }

  function guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (cause) {
      report(new WatchResourceError(`${opts.path}: the ${what} handler threw: ${describe(cause)}`, { cause }));
    }
  }

  function serverUrl(): string {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new WatchResourceError('the KubeConfig has no current cluster');
    return cluster.server.replace(/\/+$/, '');
  }

  async function listPage(cont: string | undefined): Promise<ListBody> {
    const url = new URL(serverUrl() + opts.path);
    if (opts.fieldSelector) url.searchParams.set('fieldSelector', opts.fieldSelector);
    if (opts.labelSelector) url.searchParams.set('labelSelector', opts.labelSelector);
    url.searchParams.set('limit', String(LIST_PAGE_SIZE));
    if (cont) url.searchParams.set('continue', cont);
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    ctx.setHeaderParam('Accept', 'application/json');
    await kc.applySecurityAuthentication(ctx);
    const ac = new AbortController();
    const onStop = (): void => ac.abort();
    stopper.signal.addEventListener('abort', onStop, { once: true });
    ctx.setSignal(ac.signal);
    let status: number;
    let text: string;
    try {
      const res = await http.send(ctx).toPromise();
      status = res.httpStatusCode;
      text = await res.body.text();
    } catch (cause) {
      throw new WatchResourceError(`LIST ${opts.path} failed: ${describe(cause)}`, { cause });
    } finally {
      stopper.signal.removeEventListener('abort', onStop);
      // client-node makes a new undici Agent per request (whenever TLS options are set,
      // insecure-skip-tls-verify included) and never closes it: close it so no idle
      // keep-alive socket outlives the request.
      ctx.getDispatcher()?.close().catch(() => {});
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (cause) {
      throw new WatchResourceError(`LIST ${opts.path}: HTTP ${status}, the body is not JSON`, { cause, code: status });
    }
    if (status !== 200) {
      const s = isStatus(body) ? body : {};
      throw new WatchResourceError(`LIST ${opts.path}: HTTP ${status} ${s.reason ?? ''}: ${s.message ?? text.slice(0, 200)}`, {
        code: status,
        reason: s.reason,
      });
    }
    return body as ListBody;
  }

  /** A full list (all pages); the resourceVersion is the first page's (a consistent snapshot). */
  async function list(): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const body = await listPage(cont);
      resourceVersion ??= body.metadata?.resourceVersion;
      // Real servers leave kind/apiVersion off list items; put them back so items look like watch objects.
      const kind = body.kind?.endsWith('List') ? body.kind.slice(0, -4) : undefined;
      for (const item of body.items ?? []) {
        const full = { ...item };
        if (full.kind === undefined && kind) full.kind = kind;
        if (full.apiVersion === undefined && body.apiVersion) full.apiVersion = body.apiVersion;
        items.push(full as T);
      }
      cont = body.metadata?.continue || undefined;
      if (!cont) break;
    }
    if (resourceVersion === undefined) throw new WatchResourceError(`LIST ${opts.path}: the list has no metadata.resourceVersion`);
    stats.lists++;
    return { items, resourceVersion };
  }

  /** One WATCH from `rv` until it ends; every event's resourceVersion goes to `onRv`. */
  function watchOnce(rv: string, onRv: (rv: string) => void): Promise<WatchOutcome> {
    return new Promise<WatchOutcome>((resolve) => {
      let settled = false;
      let events = 0;
      let ctrl: AbortController | undefined;
      const onStop = (): void => finish({ kind: 'ended', events });
      const finish = (o: WatchOutcome): void => {
        if (settled) return;
        settled = true;
        stopper.signal.removeEventListener('abort', onStop);
        ctrl?.abort();
        resolve(o);
      };
      const onEvent = (type: string, obj: unknown): void => {
        if (settled || stopper.signal.aborted) return;
        if (type === 'ERROR') {
          const s: KubeStatus = isStatus(obj) ? obj : { message: JSON.stringify(obj) };
          if (isGone(s) || isTooLarge(s)) finish({ kind: 'relist', events, status: s });
          else {
            finish({
              kind: 'error',
              events,
              error: new WatchResourceError(`WATCH ${opts.path}: ${s.code ?? ''} ${s.reason ?? ''}: ${s.message ?? ''}`, {
                code: s.code,
                reason: s.reason,
              }),
            });
          }
          return;
        }
        const newRv = (obj as { metadata?: { resourceVersion?: string } } | null)?.metadata?.resourceVersion;
        if (type === 'BOOKMARK') {
          if (newRv) onRv(newRv);
          return;
        }
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
        events++;
        stats.events++;
        if (newRv) onRv(newRv);
        guard('onEvent', () => opts.onEvent({ type, object: obj as T }));
      };
      const onDone = (err: unknown): void => {
        if (stopper.signal.aborted) return finish({ kind: 'ended', events });
        if (!err) return finish({ kind: 'ended', events });
        const e = errorOf(err);
        // The client's 30 s inactivity timer (no bookmark/event arrived): a normal end, re-watch.
        if (e.name === 'TimeoutError') return finish({ kind: 'ended', events });
        const code = (err as { statusCode?: number }).statusCode;
        if (code === 410) return finish({ kind: 'relist', events, status: { code } });
        finish({
          kind: 'error',
          events,
          error: new WatchResourceError(
            code ? `WATCH ${opts.path}: HTTP ${code} ${e.message}` : `WATCH ${opts.path}: connection lost: ${describe(e)}`,
            { cause: e, code },
          ),
        });
      };
      stats.watches++;
      const query = {
        resourceVersion: rv,
        allowWatchBookmarks: true,
        fieldSelector: opts.fieldSelector,
        labelSelector: opts.labelSelector,
        timeoutSeconds: WATCH_TIMEOUT_MIN_S + Math.floor(Math.random() * WATCH_TIMEOUT_MIN_S),
      };
      new Watch(kc).watch(opts.path, query, onEvent, onDone).then(
        (c) => {
          ctrl = c;
          watchCtrl = c;
          if (settled || stopper.signal.aborted) c.abort();
        },
        (err: unknown) => onDone(err ?? new Error('watch failed')),
      );
      if (stopper.signal.aborted) onStop();
      else stopper.signal.addEventListener('abort', onStop, { once: true });
    });
  }

  async function sleep(ms: number): Promise<void> {
    if (stopper.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        stopper.signal.removeEventListener('abort', done);
        resolve();
      }
      stopper.signal.addEventListener('abort', done, { once: true });
    });
  }

  async function run(): Promise<void> {
    let attempt = 0;
    let goneStreak = 0;
    let needList = true;
    let rv = '';
    const backoff = async (): Promise<void> => {
      const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
      attempt++;
      // "Equal jitter": half fixed, half random, so replicas do not reconnect in lockstep.
      await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
    };
    while (!stopper.signal.aborted) {
      if (needList) {
        let result: { items: T[]; resourceVersion: string };
        try {
          result = await list();
        } catch (err) {
          if (stopper.signal.aborted) break;
          report(err instanceof WatchResourceError ? err : new WatchResourceError(`LIST ${opts.path}: ${describe(err)}`, { cause: err }));
          await backoff();
          continue;
        }
        if (stopper.signal.aborted) break;
        rv = result.resourceVersion;
        needList = false;
        guard('onSync', () => opts.onSync(result.items, result.resourceVersion));
        if (!isSynced) {
          isSynced = true;
          resolveSynced();
        }
      }
      const started = Date.now();
      const outcome = await watchOnce(rv, (next) => (rv = next));
      watchCtrl = undefined;
      if (stopper.signal.aborted) break;
      const healthy = outcome.events > 0 || Date.now() - started >= HEALTHY_WATCH_MS;
      if (healthy) {
        attempt = 0;
        goneStreak = 0;
      }
      switch (outcome.kind) {
        case 'relist':
          stats.gone410++;
          needList = true;
          // Re-list at once the first time; back off if the server keeps answering 410.
          if (goneStreak++ > 0) await backoff();
          break;
        case 'ended':
          stats.reconnects++;
          if (!healthy) await backoff();
          break;
        case 'error':
          stats.reconnects++;
          report(outcome.error);
          await backoff();
          break;
      }
    }
  }

  const loop = run().catch((err: unknown) => {
    report(new WatchResourceError(`${opts.path}: the watcher stopped unexpectedly: ${describe(err)}`, { cause: err }));
  });

  let stopping: Promise<void> | undefined;
  return {
    synced,
    stats,
    stop() {
      stopping ??= (async () => {
        stopper.abort();
        watchCtrl?.abort();
        await loop;
        if (!isSynced) rejectSynced(new WatchResourceError(`${opts.path}: stopped before the first list completed`));
      })();
      return stopping;
    },
  };
}
