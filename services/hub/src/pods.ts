/**
 * The hub's view of the pods: what the watch says, turned into the events
 * consumers get. Watch events pass through; a (re)list is reconciled with
 * what was known, so consumers converge whatever the watch missed while it
 * was down:
 *
 * - a pod in the list and unknown -> ADDED;
 * - known with another resourceVersion -> MODIFIED (same one: nothing);
 * - known under the same name with another uid (deleted and recreated while
 *   we were away) -> DELETED (old) then ADDED (new);
 * - known in the list's scope and missing from the list -> DELETED, with the
 *   last state we saw.
 */
import type { PodLike } from '@wirescript/pod-map';

export type PodEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** A Pod object as the API server sends it (only what the hub reads is typed). */
export type Pod = PodLike & { metadata?: { resourceVersion?: string }; [k: string]: unknown };

export interface PodChange {
  type: PodEventType;
  pod: Pod;
  /** Made up by a re-list (the watch did not deliver it). */
  reconciled: boolean;
}

export interface PodTrackerCounters {
  /** Changes passed on (watch events and reconciled ones). */
  changes: number;
  /** DELETED events made up by a re-list for pods that vanished unseen. */
  reconciledDeletes: number;
  /** ADDED/MODIFIED events made up by a re-list. */
  reconciledUpdates: number;
  /** Watch events repeating a state already known (same resourceVersion): dropped. */
  duplicates: number;
  /** Objects without a name: ignored. */
  invalid: number;
}

function keyOf(pod: Pod): string | undefined {
  const m = pod.metadata;
  if (!m || typeof m.name !== 'string' || m.name === '') return undefined;
  return `${m.namespace ?? ''}/${m.name}`;
}

export class PodTracker {
  readonly counters: PodTrackerCounters = { changes: 0, reconciledDeletes: 0, reconciledUpdates: 0, duplicates: 0, invalid: 0 };
  private readonly pods = new Map<string, Pod>();
  private readonly emit: (c: PodChange) => void;

  constructor(emit: (c: PodChange) => void) {
    this.emit = emit;
  }

  get size(): number {
    return this.pods.size;
  }

  get(namespace: string, name: string): Pod | undefined {
    return this.pods.get(`${namespace}/${name}`);
  }

  private send(type: PodEventType, pod: Pod, reconciled: boolean): void {
    this.counters.changes++;
    this.emit({ type, pod, reconciled });
  }

  /** One watch event. */
  event(type: PodEventType, pod: Pod): void {
    const key = keyOf(pod);
    if (key === undefined) {
      this.counters.invalid++;
      return;
    }
    const known = this.pods.get(key);
    if (type === 'DELETED') {
      this.pods.delete(key);
      this.send('DELETED', pod, false);
      return;
    }
    if (known && known.metadata?.uid === pod.metadata?.uid && known.metadata?.resourceVersion === pod.metadata?.resourceVersion && pod.metadata?.resourceVersion !== undefined) {
      this.counters.duplicates++;
      return;
    }
    if (known && known.metadata?.uid !== undefined && pod.metadata?.uid !== undefined && known.metadata.uid !== pod.metadata.uid) {
      // Same name, another pod: the old one's DELETED was missed.
      this.send('DELETED', known, true);
      this.counters.reconciledDeletes++;
      this.pods.set(key, pod);
      this.send('ADDED', pod, false);
      return;
    }
    this.pods.set(key, pod);
    this.send(type, pod, false);
  }

  /**
   * The complete list of pods in a scope (one namespace, or every namespace
   * when `namespace` is undefined), after a (re)list.
   */
  sync(namespace: string | undefined, items: readonly Pod[]): void {
    const seen = new Set<string>();
    for (const pod of items) {
      const key = keyOf(pod);
      if (key === undefined) {
        this.counters.invalid++;
        continue;
      }
      seen.add(key);
      const known = this.pods.get(key);
      if (!known) {
        this.pods.set(key, pod);
        this.counters.reconciledUpdates++;
        this.send('ADDED', pod, true);
      } else if (known.metadata?.uid !== undefined && pod.metadata?.uid !== undefined && known.metadata.uid !== pod.metadata.uid) {
        this.pods.set(key, pod);
        this.counters.reconciledDeletes++;
        this.counters.reconciledUpdates++;
        this.send('DELETED', known, true);
        this.send('ADDED', pod, true);
      } else if (known.metadata?.resourceVersion !== pod.metadata?.resourceVersion || pod.metadata?.resourceVersion === undefined) {
        this.pods.set(key, pod);
        this.counters.reconciledUpdates++;
        this.send('MODIFIED', pod, true);
      }
    }
    const prefix = namespace === undefined ? undefined : `${namespace}/`;
    for (const [key, pod] of this.pods) {
      if (seen.has(key) || (prefix !== undefined && !key.startsWith(prefix))) continue;
      this.pods.delete(key);
      this.counters.reconciledDeletes++;
      this.send('DELETED', pod, true);
    }
  }
}
