/**
 * The writer side of the pod map (the hub): keeps the KV bucket equal to the
 * IPs of the pods it is told about.
 *
 * Pod changes only update in-memory claims and mark the touched IPs dirty
 * (cheap, synchronous, never lost); a pump writes the dirty IPs to KV with
 * bounded concurrency, coalescing repeated changes of one IP into one write,
 * skipping writes that would not change the stored value, and retrying with
 * backoff while NATS is away. So the bucket converges to the pods' state
 * whatever happens in between.
 *
 * IP reuse: several pods may claim one IP for a while (the old pod is
 * terminating, or its DELETED event has not arrived yet, when a new pod gets
 * its address). The newest pod (creationTimestamp, then first seen) owns the
 * key; when it leaves, the key goes to the next claimant or is deleted.
 */
import type { KV, NatsConnection } from '@wirescript/nats';
import { openPodMapKv, readBucket } from './bucket.ts';
import { podCreatedMs, podIps, podKey, podMapEntry, podMapKey, ipFromPodMapKey, POD_MAP_BUCKET, type PodLike } from './keys.ts';

export interface PodMapWriterOptions {
  /** KV operations in flight at once (default 16). */
  concurrency?: number;
  /** Timeout of one KV put, ms (default 2 s; a put sent into a dying connection fails this fast and is retried). */
  opTimeoutMs?: number;
  /** Longest wait between retries after KV errors, ms (default 10 s; starts at 250 ms). */
  retryMaxMs?: number;
  /** Where problems are reported (default: nowhere; they are counted in stats). */
  log?: (line: string) => void;
}

export interface PodMapWriterStats {
  /** KV puts and deletes done. */
  puts: number;
  deletes: number;
  /** KV operations that failed (each retried). */
  errors: number;
  /** IPs claimed by more than one pod at the time of a change (IP reuse in progress). */
  conflicts: number;
  /** Keys of the bucket that are not IPs (left alone). */
  foreignKeys: number;
}

interface PodRecord {
  ips: string[];
  json: string;
  created: number;
  seq: number;
}

export class PodMapWriter {
  readonly stats: PodMapWriterStats = { puts: 0, deletes: 0, errors: 0, conflicts: 0, foreignKeys: 0 };
  readonly #kv: KV;
  readonly #concurrency: number;
  readonly #retryMaxMs: number;
  readonly #opTimeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #pods = new Map<string, PodRecord>();
  readonly #claims = new Map<string, Set<string>>();
  /** What the bucket holds (as far as we know): ip -> value JSON. */
  readonly #written = new Map<string, string>();
  readonly #dirty = new Set<string>();
  readonly #inFlight = new Set<string>();
  #seq = 0;
  #ready = false;
  #stopped = false;
  #backoffMs = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #idleWaiters: (() => void)[] = [];
  #lastError = '';
  #pumping = false;

  constructor(kv: KV, opts: PodMapWriterOptions = {}) {
    this.#kv = kv;
    this.#concurrency = opts.concurrency ?? 16;
    this.#retryMaxMs = opts.retryMaxMs ?? 10_000;
    this.#opTimeoutMs = opts.opTimeoutMs ?? 2_000;
    this.#log = opts.log ?? (() => {});
  }

  /** Opens (creating) the bucket and loads what it holds. */
  static async open(nc: NatsConnection, opts: PodMapWriterOptions & { bucket?: string } = {}): Promise<PodMapWriter> {
    const w = new PodMapWriter(await openPodMapKv(nc, opts.bucket ?? POD_MAP_BUCKET), opts);
    await w.start();
    return w;
  }

  /**
   * Loads the bucket's current contents (so unchanged values are not
   * rewritten and stale keys are known), then starts writing. Changes made
   * before it resolves are kept and written after.
   */
  async start(): Promise<void> {
    const current = await readBucket(this.#kv);
    for (const [key, value] of current) {
      const ip = ipFromPodMapKey(key);
      if (ip === undefined) this.stats.foreignKeys++;
      else this.#written.set(ip, value);
    }
    this.#ready = true;
    this.#pump();
  }

  /** Pods known. */
  get pods(): number {
    return this.#pods.size;
  }

  /** IPs that have an owner (what the bucket holds once flushed). */
  get ips(): number {
    return this.#claims.size;
  }

  /** IPs waiting to be written, plus those being written. */
  get pending(): number {
    return this.#dirty.size + this.#inFlight.size;
  }

  get lastError(): string {
    return this.#lastError;
  }

  /** A pod was added or changed (ADDED/MODIFIED, or seen in a list). */
  upsert(pod: PodLike): void {
    const key = podKey(pod);
    if (key === undefined) return;
    const old = this.#pods.get(key);
    const rec: PodRecord = {
      ips: podIps(pod),
      json: JSON.stringify(podMapEntry(pod)),
      created: podCreatedMs(pod),
      seq: old?.seq ?? ++this.#seq,
    };
    this.#pods.set(key, rec);
    this.#reclaim(key, old?.ips ?? [], rec.ips, old?.json !== rec.json || old?.created !== rec.created);
  }

  /** A pod is gone (DELETED, or missing from a list). */
  remove(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const old = this.#pods.get(key);
    if (!old) return;
    this.#pods.delete(key);
    this.#reclaim(key, old.ips, [], false);
  }

  /** Every pod the writer knows, by `<namespace>/<name>`. */
  knows(namespace: string, name: string): boolean {
    return this.#pods.has(`${namespace}/${name}`);
  }

  /**
   * Deletes the keys of IPs no known pod claims (left by a previous run or by
   * pods that went away while nobody watched) and rewrites values that
   * differ. Call it once the pod list is complete (after the first sync).
   */
  reconcile(): void {
    for (const ip of this.#written.keys()) this.#dirty.add(ip);
    for (const ip of this.#claims.keys()) this.#dirty.add(ip);
    this.#pump();
  }

  /** The value the bucket should hold for an IP (JSON), or undefined. */
  desired(ip: string): string | undefined {
    const claimants = this.#claims.get(ip);
    if (!claimants) return undefined;
    let best: PodRecord | undefined;
    for (const k of claimants) {
      const r = this.#pods.get(k);
      if (r && (!best || r.created > best.created || (r.created === best.created && r.seq > best.seq))) best = r;
    }
    return best?.json;
  }

  #reclaim(key: string, before: readonly string[], after: readonly string[], changed: boolean): void {
    for (const ip of before) {
      if (after.includes(ip)) continue;
      const c = this.#claims.get(ip);
      c?.delete(key);
      if (c && c.size === 0) this.#claims.delete(ip);
      this.#dirty.add(ip);
    }
    for (const ip of after) {
      let c = this.#claims.get(ip);
      if (!c) this.#claims.set(ip, (c = new Set()));
      if (!c.has(key)) {
        c.add(key);
        if (c.size > 1) this.stats.conflicts++;
        this.#dirty.add(ip);
      } else if (changed) {
        this.#dirty.add(ip);
      }
    }
    this.#pump();
  }

  #pump(): void {
    if (!this.#ready || this.#stopped || this.#retryTimer || this.#pumping) return;
    this.#pumping = true;
    try {
      this.#pumpOnce();
    } finally {
      this.#pumping = false;
    }
    this.#notifyIdle();
  }

  #pumpOnce(): void {
    for (const ip of this.#dirty) {
      if (this.#retryTimer) break;
      if (this.#inFlight.size >= this.#concurrency) break;
      if (this.#inFlight.has(ip)) continue; // written again once the current write ends
      this.#dirty.delete(ip);
      const want = this.desired(ip);
      const have = this.#written.get(ip);
      if (want === have) continue;
      this.#inFlight.add(ip);
      void this.#write(ip, want);
    }
  }

  async #write(ip: string, want: string | undefined): Promise<void> {
    const key = podMapKey(ip);
    try {
      if (want === undefined) {
        await this.#kv.delete(key);
        this.#written.delete(ip);
        this.stats.deletes++;
      } else {
        await this.#kv.put(key, want, { timeout: this.#opTimeoutMs });
        this.#written.set(ip, want);
        this.stats.puts++;
      }
      this.#backoffMs = 0;
    } catch (err) {
      this.stats.errors++;
      this.#lastError = (err as Error).message;
      this.#dirty.add(ip);
      if (!this.#stopped && !this.#retryTimer) {
        this.#backoffMs = Math.min(this.#retryMaxMs, this.#backoffMs === 0 ? 250 : this.#backoffMs * 2);
        if (this.stats.errors <= 5 || this.stats.errors % 100 === 0) {
          this.#log(`pod map: writing ${key} failed (${this.stats.errors} failures so far), retrying in ${this.#backoffMs} ms: ${this.#lastError}`);
        }
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = null;
          this.#pump();
        }, this.#backoffMs);
        this.#retryTimer.unref();
      }
    } finally {
      this.#inFlight.delete(ip);
      this.#pump();
    }
  }

  #notifyIdle(): void {
    if (this.#dirty.size > 0 || this.#inFlight.size > 0 || !this.#ready) return;
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const r of w) r();
  }

  /** Resolves once every change so far is in the bucket (true), or after timeoutMs (false). */
  async flushed(timeoutMs = 10_000): Promise<boolean> {
    if (this.#ready && this.pending === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      new Promise<true>((r) => this.#idleWaiters.push(() => r(true))),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return ok;
  }

  /** Writes what it can within timeoutMs, then stops writing. */
  async stop(timeoutMs = 2_000): Promise<void> {
    await this.flushed(timeoutMs);
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }
}
