/** Opening the pod-map bucket and following its contents (shared by the writer and the reader). */
import { openKv, type KV, type KvWatchEntry, type NatsConnection } from '@wirescript/nats';
import { POD_MAP_BUCKET } from './keys.ts';

/**
 * Opens the pod-map bucket, creating it when missing: the writer (hub) and
 * the readers (capture) may start in any order. One value per key.
 */
export function openPodMapKv(nc: NatsConnection, bucket: string = POD_MAP_BUCKET): Promise<KV> {
  return openKv(nc, bucket, { create: true, history: 1 });
}

export interface BucketFollower {
  /** Resolves once the bucket's contents at watch time were delivered (or the initial timeout passed). */
  readonly initial: Promise<void>;
  /** Resolves when the watch ended (stopped, or lost: the caller may watch again). */
  readonly ended: Promise<Error | undefined>;
  stop(): void;
}

/**
 * Watches every key of the bucket: the last value of each key first (with
 * `initial` resolved after the last of them), then every change. Delete
 * markers come as operation DEL/PURGE.
 */
export async function followBucket(
  kv: KV,
  onEntry: (e: KvWatchEntry, initial: boolean) => void,
  opts: { initialTimeoutMs?: number } = {},
): Promise<BucketFollower> {
  // How many keys (live or deleted) the bucket holds: with one value per key,
  // the number of entries the watch delivers before the updates.
  const st = await kv.status();
  const iter = await kv.watch({ key: '>' });
  let initialDone = st.values === 0;
  let markInitial!: () => void;
  const initial = new Promise<void>((r) => (markInitial = r));
  if (initialDone) markInitial();
  // Safety net: a bucket emptied between status() and watch() delivers nothing initial.
  const timer = setTimeout(() => {
    initialDone = true;
    markInitial();
  }, opts.initialTimeoutMs ?? 5_000);
  timer.unref();
  const ended = (async (): Promise<Error | undefined> => {
    try {
      for await (const e of iter) {
        // The watch flags the last initial entry (and every later one) isUpdate.
        onEntry(e, !initialDone);
        if (!initialDone && e.isUpdate) {
          initialDone = true;
          markInitial();
        }
      }
      return undefined;
    } catch (err) {
      return err as Error;
    } finally {
      clearTimeout(timer);
      markInitial();
    }
  })();
  return { initial, ended, stop: () => iter.stop() };
}

/** The bucket's current contents: key -> value text (deleted keys left out). */
export async function readBucket(kv: KV, opts: { timeoutMs?: number } = {}): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const f = await followBucket(kv, (e) => {
    if (e.operation === 'PUT') out.set(e.key, e.string());
    else out.delete(e.key);
  }, { initialTimeoutMs: opts.timeoutMs });
  await f.initial;
  f.stop();
  return out;
}
