/**
 * The reader side of the pod map (capture): a local copy of the bucket,
 * kept current by a KV watch, answering `resolve(ip)` from a Map: O(1), and
 * no allocation per lookup (the result is a shared frozen object).
 *
 * If the watch ends (the bucket was deleted, or the client gave up on it), it
 * watches again after a backoff and swaps in the fresh copy once complete;
 * until then lookups keep using the last copy.
 */
import type { KV, KvWatchEntry, NatsConnection } from '@wirescript/nats';
import { followBucket, openPodMapKv, type BucketFollower } from './bucket.ts';
import { ipFromPodMapKey, POD_MAP_BUCKET } from './keys.ts';

/** What capture puts in an item's `src`/`dst`. */
export interface PodRef {
  readonly name: string;
  readonly namespace: string;
}

export interface PodDirectoryOptions {
  /** Called after every applied change (tests, metrics). */
  onChange?: (ip: string, pod: PodRef | undefined) => void;
  /** Where problems are reported (default: nowhere; they are counted in stats). */
  log?: (line: string) => void;
  /** Longest wait before watching again after the watch ended, ms (default 10 s). */
  retryMaxMs?: number;
}

export interface PodDirectoryStats {
  /** Changes applied (puts and deletes). */
  updates: number;
  /** Values that were not a pod entry (ignored). */
  invalid: number;
  /** Times the watch was started again after it ended. */
  rewatches: number;
}

export class PodDirectory {
  readonly stats: PodDirectoryStats = { updates: 0, invalid: 0, rewatches: 0 };
  #map = new Map<string, PodRef>();
  readonly #kv: KV;
  readonly #opts: PodDirectoryOptions;
  #follower: BucketFollower | null = null;
  #stopped = false;
  #loop: Promise<void> | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #wakeRetry: (() => void) | null = null;

  constructor(kv: KV, opts: PodDirectoryOptions = {}) {
    this.#kv = kv;
    this.#opts = opts;
  }

  /** Opens (creating, so start order does not matter) the bucket and loads it; resolves once loaded. */
  static async open(nc: NatsConnection, opts: PodDirectoryOptions & { bucket?: string } = {}): Promise<PodDirectory> {
    const d = new PodDirectory(await openPodMapKv(nc, opts.bucket ?? POD_MAP_BUCKET), opts);
    await d.start();
    return d;
  }

  /**
   * The pod that owns `ip` (canonical text, as capture prints it), or
   * undefined. A bound function: pass it as is (`{ resolve: dir.resolve }`).
   */
  readonly resolve = (ip: string): PodRef | undefined => this.#map.get(ip);

  /** IPs known. */
  get size(): number {
    return this.#map.size;
  }

  /** Resolves once the bucket's current contents are loaded; then follows changes. */
  async start(): Promise<void> {
    await this.#watch(false);
    this.#loop = this.#rewatchLoop();
  }

  async #watch(fresh: boolean): Promise<void> {
    // A rewatch fills a new map and swaps it in once complete, so deletions
    // missed while the watch was down do not linger, and lookups never see a
    // half-loaded copy.
    const target = fresh ? new Map<string, PodRef>() : this.#map;
    const f = await followBucket(this.#kv, (e, initial) => this.#apply(target, e, !initial));
    this.#follower = f;
    await f.initial;
    this.#map = target;
  }

  #apply(map: Map<string, PodRef>, e: KvWatchEntry, live: boolean): void {
    const ip = ipFromPodMapKey(e.key);
    if (ip === undefined) {
      this.stats.invalid++;
      return;
    }
    let ref: PodRef | undefined;
    if (e.operation === 'PUT') {
      try {
        const v = JSON.parse(e.string()) as { name?: unknown; namespace?: unknown };
        if (typeof v?.name !== 'string' || typeof v.namespace !== 'string') throw new Error('name and namespace must be strings');
        const old = map.get(ip);
        ref = old && old.name === v.name && old.namespace === v.namespace ? old : Object.freeze({ name: v.name, namespace: v.namespace });
      } catch (err) {
        this.stats.invalid++;
        this.#opts.log?.(`pod map: bad value under ${e.key}: ${(err as Error).message}`);
        return;
      }
      map.set(ip, ref);
    } else {
      map.delete(ip);
    }
    this.stats.updates++;
    if (live) this.#opts.onChange?.(ip, ref);
  }

  async #rewatchLoop(): Promise<void> {
    let backoff = 0;
    while (!this.#stopped) {
      const err = await this.#follower?.ended;
      if (this.#stopped) return;
      backoff = Math.min(this.#opts.retryMaxMs ?? 10_000, backoff === 0 ? 250 : backoff * 2);
      this.#opts.log?.(`pod map: watch ended${err ? ` (${err.message})` : ''}, watching again in ${backoff} ms`);
      await new Promise<void>((r) => {
        this.#wakeRetry = r;
        this.#retryTimer = setTimeout(r, backoff);
      });
      if (this.#stopped) return;
      try {
        this.stats.rewatches++;
        await this.#watch(true);
        backoff = 0;
      } catch (e) {
        this.#opts.log?.(`pod map: cannot watch the bucket: ${(e as Error).message}`);
        this.#follower = { initial: Promise.resolve(), ended: Promise.resolve(e as Error), stop() {} };
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#wakeRetry?.();
    this.#follower?.stop();
    await this.#loop;
  }
}
