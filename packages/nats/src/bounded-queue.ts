export class QueueHandlerError extends Error {
  override readonly name = 'QueueHandlerError';
}

export interface DrainOptions<T> {
  /** Most items handed to one handler call (default 64). */
  batchSize?: number;
  /** Stop after the current batch; items still queued stay queued. */
  signal?: AbortSignal;
  /**
   * Called when the handler throws; the loop goes on with the next batch.
   * Without it, the loop stops and `drain` rejects with QueueHandlerError.
   */
  onError?: (err: unknown, batch: readonly T[]) => void;
}

/**
 * A fixed-capacity FIFO between a producer that must never wait (a NATS
 * subscription callback, the capture loop) and a slower async consumer.
 *
 * When full, `push` drops the NEW item and counts it (tail drop). Why not drop
 * the oldest: the queued items are already accepted and may be mid-way into a
 * batch the consumer has seen the start of; tail drop keeps what was accepted
 * intact and in order, costs O(1) with no shifting, and is what kernel and
 * pcap ring buffers do, so a drop count means the same thing at every layer.
 *
 * A ring buffer: no allocation per item beyond its array slot.
 */
export class BoundedQueue<T> {
  readonly capacity: number;
  readonly #buf: (T | undefined)[];
  #head = 0;
  #size = 0;
  #dropped = 0;
  #accepted = 0;
  #closed = false;
  #draining = false;
  #wake: (() => void) | undefined;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`BoundedQueue capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#buf = new Array<T | undefined>(capacity).fill(undefined);
  }

  /** Items waiting. */
  get size(): number {
    return this.#size;
  }
  /** Items refused because the queue was full (or closed) since it was made. */
  get dropped(): number {
    return this.#dropped;
  }
  /** Items accepted since it was made. */
  get accepted(): number {
    return this.#accepted;
  }
  get closed(): boolean {
    return this.#closed;
  }

  /** Adds at the tail; false (and one more drop counted) when full or closed. Never blocks. */
  push(item: T): boolean {
    if (this.#size === this.capacity || this.#closed) {
      this.#dropped++;
      return false;
    }
    let tail = this.#head + this.#size;
    if (tail >= this.capacity) tail -= this.capacity;
    this.#buf[tail] = item;
    this.#size++;
    this.#accepted++;
    this.#notify();
    return true;
  }

  /** Removes and returns the head, or undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    return this.#take();
  }

  #take(): T {
    const item = this.#buf[this.#head] as T;
    this.#buf[this.#head] = undefined; // let the item be collected
    this.#head = this.#head + 1 === this.capacity ? 0 : this.#head + 1;
    this.#size--;
    return item;
  }

  /** Empties the queue; returns how many items were discarded (not counted as drops: the owner chose this). */
  clear(): number {
    const n = this.#size;
    while (this.#size > 0) this.#take();
    this.#head = 0;
    return n;
  }

  /** No more pushes (they count as drops); a running `drain` ends once the queue is empty. */
  close(): void {
    this.#closed = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      wake();
    }
  }

  /**
   * The consumer loop: waits for items, hands them to `handler` in batches of
   * up to `batchSize`, and awaits it before taking the next batch, so items
   * pile up here (and get dropped when full) rather than anywhere unbounded.
   * Resolves after `close()` once empty, or when `signal` aborts.
   *
   * The batch array is reused between calls: copy it if you keep it beyond the
   * handler's (promise's) completion.
   */
  async drain(handler: (batch: readonly T[]) => void | Promise<void>, opts: DrainOptions<T> = {}): Promise<void> {
    const batchSize = opts.batchSize ?? 64;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    if (this.#draining) throw new Error('BoundedQueue.drain: a consumer loop is already running (one consumer per queue)');
    this.#draining = true;
    const signal = opts.signal;
    const onAbort = () => this.#notify();
    signal?.addEventListener('abort', onAbort);
    const batch: T[] = [];
    try {
      for (;;) {
        if (signal?.aborted) return;
        if (this.#size === 0) {
          if (this.#closed) return;
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          continue;
        }
        batch.length = 0;
        while (batch.length < batchSize && this.#size > 0) batch.push(this.#take());
        try {
          await handler(batch);
        } catch (err) {
          if (!opts.onError) throw new QueueHandlerError(`queue consumer failed on a batch of ${batch.length}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
          opts.onError(err, batch);
        }
      }
    } finally {
      batch.length = 0;
      this.#wake = undefined;
      this.#draining = false;
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
