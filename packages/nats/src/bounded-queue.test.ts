import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BoundedQueue, QueueHandlerError } from './bounded-queue.ts';

describe('BoundedQueue ring buffer', () => {
  it('is FIFO across wraparound', () => {
    const q = new BoundedQueue<number>(3);
    const out: number[] = [];
    let next = 0;
    // Interleave pushes and shifts so head and tail wrap several times.
    for (let round = 0; round < 10; round++) {
      assert.equal(q.push(next++), true);
      assert.equal(q.push(next++), true);
      out.push(q.shift() as number);
      out.push(q.shift() as number);
    }
    assert.deepEqual(out, Array.from({ length: 20 }, (_, i) => i));
    assert.equal(q.size, 0);
    assert.equal(q.shift(), undefined);
    assert.equal(q.accepted, 20);
    assert.equal(q.dropped, 0);
  });

  it('drops the newest when full, and counts it', () => {
    const q = new BoundedQueue<string>(2);
    assert.equal(q.push('a'), true);
    assert.equal(q.push('b'), true);
    assert.equal(q.push('c'), false);
    assert.equal(q.push('d'), false);
    assert.equal(q.size, 2);
    assert.equal(q.dropped, 2);
    assert.equal(q.shift(), 'a');
    assert.equal(q.push('e'), true); // lands in the slot 'a' left, after 'b'
    assert.deepEqual([q.shift(), q.shift(), q.shift()], ['b', 'e', undefined]);
    assert.equal(q.accepted, 3);
  });

  it('refuses pushes after close, counting them as drops', () => {
    const q = new BoundedQueue<number>(4);
    q.push(1);
    q.close();
    assert.equal(q.push(2), false);
    assert.equal(q.dropped, 1);
    assert.equal(q.shift(), 1);
  });

  it('clear empties without counting drops', () => {
    const q = new BoundedQueue<number>(4);
    for (let i = 0; i < 4; i++) q.push(i);
    assert.equal(q.clear(), 4);
    assert.equal(q.size, 0);
    assert.equal(q.dropped, 0);
    q.push(9);
    assert.equal(q.shift(), 9);
  });

  it('rejects a bad capacity', () => {
    assert.throws(() => new BoundedQueue(0), RangeError);
    assert.throws(() => new BoundedQueue(1.5), RangeError);
  });
});

describe('BoundedQueue.drain', () => {
  it('hands batches to a slow consumer while the producer never waits', async () => {
    const q = new BoundedQueue<number>(8);
    const seen: number[][] = [];
    const done = q.drain(
      async (batch) => {
        seen.push([...batch]);
        await sleep(20);
      },
      { batchSize: 3 },
    );
    // The producer pushes 20 items synchronously: 8 fit, 12 are dropped.
    const accepted = Array.from({ length: 20 }, (_, i) => q.push(i)).filter(Boolean).length;
    assert.equal(accepted, 8);
    assert.equal(q.dropped, 12);
    q.close();
    await done;
    assert.deepEqual(seen, [[0, 1, 2], [3, 4, 5], [6, 7]]);
  });

  it('wakes up for items pushed later and ends on close once empty', async () => {
    const q = new BoundedQueue<number>(4);
    const got: number[] = [];
    const done = q.drain((batch) => {
      got.push(...batch);
    });
    await sleep(5);
    q.push(1);
    await sleep(5);
    q.push(2);
    q.push(3);
    q.close();
    await done;
    assert.deepEqual(got, [1, 2, 3]);
  });

  it('stops on abort, leaving queued items', async () => {
    const q = new BoundedQueue<number>(4);
    const ac = new AbortController();
    const done = q.drain(() => ac.abort(), { batchSize: 1, signal: ac.signal });
    q.push(1);
    q.push(2);
    await done;
    assert.equal(q.size, 1);
    // And an idle loop stops on abort too.
    const ac2 = new AbortController();
    q.clear();
    const idle = q.drain(() => undefined, { signal: ac2.signal });
    ac2.abort();
    await idle;
  });

  it('rejects with the handler error unless onError is given', async () => {
    const q = new BoundedQueue<number>(4);
    q.push(1);
    await assert.rejects(
      q.drain(() => {
        throw new Error('bad item');
      }),
      (err: unknown) => err instanceof QueueHandlerError && /bad item/.test(err.message) && (err.cause as Error).message === 'bad item',
    );
    const errors: string[] = [];
    q.push(2);
    q.push(3);
    q.close();
    await q.drain(
      (batch) => {
        if (batch[0] === 2) throw new Error('two');
      },
      { batchSize: 1, onError: (err, batch) => errors.push(`${(err as Error).message}:${batch[0]}`) },
    );
    assert.deepEqual(errors, ['two:2']);
    assert.equal(q.size, 0);
  });

  it('allows one consumer loop at a time', async () => {
    const q = new BoundedQueue<number>(2);
    const first = q.drain(() => undefined);
    await assert.rejects(q.drain(() => undefined), /already running/);
    q.close();
    await first;
  });
});
