import { test, describe, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from '../types.ts';
import { LINKTYPE } from '../types.ts';
import { readCaptureFile } from './capture-file.ts';
import { StreamPcapRing, StreamRingError } from './stream-ring.ts';

const root = mkdtempSync(join(tmpdir(), 'ws-stream-ring-'));
let dir: string;
let n = 0;
beforeEach(() => {
  dir = join(root, `ring-${n++}`);
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

// One reused frame, like the pipeline's.
const f: Frame = { tsMs: 0, captureLength: 0, length: 0, linkType: LINKTYPE.ETHERNET, interfaceId: 0, data: Buffer.alloc(0) };
function fr(tsMs: number, data: Buffer, linkType: number = LINKTYPE.ETHERNET, length = data.length): Frame {
  f.tsMs = tsMs;
  f.data = data;
  f.captureLength = data.length;
  f.length = length;
  f.linkType = linkType;
  return f;
}

async function framesOf(path: string): Promise<{ tsMs: number; data: Buffer; length: number; linkType: number }[]> {
  const out: { tsMs: number; data: Buffer; length: number; linkType: number }[] = [];
  await readCaptureFile(path, (x) => void out.push({ tsMs: x.tsMs, data: Buffer.from(x.data), length: x.length, linkType: x.linkType }));
  return out;
}

function onDisk(d: string): { files: number; bytes: number } {
  const names = readdirSync(d).filter((x) => /^stream-\d+\.pcap$/.test(x));
  return { files: names.length, bytes: names.reduce((s, x) => s + statSync(join(d, x)).size, 0) };
}

/** A record of `size` data bytes costs 16 + size bytes; a file starts with 24. */
const rec = (size: number): number => 16 + size;

describe('StreamPcapRing', () => {
  test("each stream gets its own pcap file with its first frame's link type; stats match the disk", async () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 1 << 20, maxFiles: 10 });
    ring.write(1, fr(1000, Buffer.from('one-a')));
    ring.write(2, fr(1001, Buffer.from('two-a'), LINKTYPE.RAW));
    ring.write(1, fr(1002.5, Buffer.from('one-b'), LINKTYPE.ETHERNET, 1500));
    ring.end(1);
    ring.flush();
    assert.deepEqual(ring.stats, {
      files: 2,
      bytes: 24 + rec(5) * 2 + 24 + rec(5),
      evictedStreams: 0,
      evictedBytes: 0,
      droppedFrames: 0,
      linkTypeMismatches: 0,
      bufferedBytes: 0,
    });
    assert.deepEqual(onDisk(dir), { files: 2, bytes: ring.stats.bytes });
    const one = await framesOf(join(dir, 'stream-1.pcap'));
    assert.deepEqual(
      one.map((x) => [x.tsMs, x.data.toString(), x.length, x.linkType]),
      [
        [1000, 'one-a', 5, LINKTYPE.ETHERNET],
        [1002.5, 'one-b', 1500, LINKTYPE.ETHERNET],
      ],
    );
    const two = await framesOf(join(dir, 'stream-2.pcap'));
    assert.deepEqual(two.map((x) => [x.data.toString(), x.linkType]), [['two-a', LINKTYPE.RAW]]);
    ring.close();
  });

  test('a frame written after end() (a last ACK) is appended to the stream\'s file', async () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 1 << 20, maxFiles: 10 });
    ring.write(7, fr(1, Buffer.from('fin')));
    ring.end(7);
    assert.equal(ring.write(7, fr(2, Buffer.from('ack'))), true);
    ring.flush();
    assert.deepEqual((await framesOf(join(dir, 'stream-7.pcap'))).map((x) => x.data.toString()), ['fin', 'ack']);
    assert.deepEqual(onDisk(dir), { files: 1, bytes: 24 + rec(3) * 2 });
    ring.close();
  });

  test('a frame of another link type than its stream is dropped and counted', () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 1 << 20, maxFiles: 10 });
    assert.equal(ring.write(7, fr(1, Buffer.alloc(10))), true);
    assert.equal(ring.write(7, fr(2, Buffer.alloc(10), LINKTYPE.LINUX_SLL)), false);
    assert.equal(ring.stats.droppedFrames, 1);
    assert.equal(ring.stats.linkTypeMismatches, 1);
    assert.equal(ring.stats.bytes, 24 + rec(10));
    ring.close();
  });

  test('eviction by bytes: oldest streams first, files deleted, counted; later frames of an evicted live stream dropped', () => {
    const perStream = 24 + 3 * rec(100); // 372
    const ring = new StreamPcapRing({ dir, maxBytes: 1000, maxFiles: 100 });
    for (const id of [1, 2]) for (let i = 0; i < 3; i++) ring.write(id, fr(id * 10 + i, Buffer.alloc(100, id)));
    ring.end(2);
    ring.flush();
    assert.equal(ring.stats.bytes, 2 * perStream);
    assert.equal(ring.stats.evictedStreams, 0);
    for (let i = 0; i < 3; i++) ring.write(3, fr(30 + i, Buffer.alloc(100, 3)));
    // 3 * 372 > 1000: stream 1, the oldest, goes.
    assert.equal(ring.has(1), false);
    assert.equal(ring.has(2), true);
    assert.equal(ring.stats.evictedStreams, 1);
    assert.equal(ring.stats.evictedBytes, perStream);
    assert.equal(ring.stats.bytes, 2 * perStream);
    assert.ok(!existsSync(join(dir, 'stream-1.pcap')), 'file deleted');
    ring.flush();
    assert.deepEqual(onDisk(dir), { files: 2, bytes: 2 * perStream });

    // Stream 1 had not ended: its later frames are dropped, not a file without its beginning.
    assert.equal(ring.write(1, fr(99, Buffer.alloc(100, 1))), false);
    assert.equal(ring.stats.droppedFrames, 1);
    assert.equal(ring.has(1), false);

    // Stream 2 had ended; evicting it leaves nothing behind to drop.
    for (let i = 0; i < 3; i++) ring.write(4, fr(40 + i, Buffer.alloc(100, 4)));
    assert.equal(ring.has(2), false);
    assert.equal(ring.stats.evictedStreams, 2);
    assert.ok(ring.stats.bytes <= 1000);
    // A late frame of it (a connection's last ACK after its end) does not start a file without its beginning.
    assert.equal(ring.write(2, fr(98, Buffer.alloc(10, 2))), false);
    assert.equal(ring.has(2), false);
    assert.equal(ring.stats.droppedFrames, 2);
    ring.close();
  });

  test('eviction by file count', () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 1 << 20, maxFiles: 3 });
    for (let id = 1; id <= 5; id++) ring.write(id, fr(id, Buffer.alloc(10 * id)));
    assert.deepEqual([1, 2, 3, 4, 5].map((id) => ring.has(id)), [false, false, true, true, true]);
    assert.equal(ring.stats.files, 3);
    assert.equal(ring.stats.evictedStreams, 2);
    assert.equal(ring.stats.evictedBytes, 24 + rec(10) + 24 + rec(20));
    ring.flush();
    assert.deepEqual(onDisk(dir), { files: 3, bytes: ring.stats.bytes });
    ring.close();
  });

  test('a single stream larger than maxBytes is evicted itself', () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 500, maxFiles: 10 });
    assert.equal(ring.write(1, fr(1, Buffer.alloc(200))), true);
    assert.equal(ring.write(1, fr(2, Buffer.alloc(400))), false);
    assert.equal(ring.has(1), false);
    assert.deepEqual([ring.stats.files, ring.stats.bytes, ring.stats.evictedStreams], [0, 0, 1]);
    ring.close();
  });

  test('snapshot merges the chosen streams by timestamp (ties in the order asked), lists missing and other-link-type streams', async () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 1 << 20, maxFiles: 10, resolution: 'ns' });
    const plan: [number, number][] = [
      [1, 10],
      [2, 11],
      [1, 12],
      [3, 12],
      [2, 12], // ties at 12: asked order is [3, 1, 2]
      [1, 30.000001],
      [2, 20.5],
      [3, 25],
    ];
    for (const [id, ts] of plan) ring.write(id, fr(ts, Buffer.from(`s${id}@${ts}`)));
    ring.write(9, fr(15, Buffer.from('other link'), LINKTYPE.RAW));
    const out = join(dir, '..', `snap-${n}.pcap`);
    const r = await ring.snapshot([3, 1, 42, 2, 9, 1], out);
    assert.deepEqual([r.streams, r.missing, r.skipped, r.linkType, r.frames], [[3, 1, 2], [42], [9], LINKTYPE.ETHERNET, 8]);
    assert.equal(r.bytes, statSync(out).size);
    const got = (await framesOf(out)).map((x) => x.data.toString());
    assert.deepEqual(got, ['s1@10', 's2@11', 's3@12', 's1@12', 's2@12', 's2@20.5', 's3@25', 's1@30.000001']);
    const ts = (await framesOf(out)).map((x) => x.tsMs);
    assert.deepEqual(ts, [10, 11, 12, 12, 12, 20.5, 25, 30.000001]);
    assert.ok(!existsSync(`${out}.partial`));
    await assert.rejects(ring.snapshot([42, 43], out), StreamRingError);
    ring.close();
  });

  test('a snapshot sees the streams as they were when asked, even if they are written to or evicted meanwhile', async () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 5000, maxFiles: 10, streamBufferBytes: 256, maxBufferedBytes: 1024 });
    for (let i = 0; i < 20; i++) ring.write(1, fr(i, Buffer.alloc(100, i)));
    const out = join(dir, '..', `snap-live-${n}.pcap`);
    const pending = ring.snapshot([1], out);
    // Synchronously, before the snapshot reads anything: more frames, then enough other traffic to evict stream 1.
    ring.write(1, fr(100, Buffer.alloc(100, 0xff)));
    for (let i = 0; i < 60; i++) ring.write(2, fr(200 + i, Buffer.alloc(100, 2)));
    assert.equal(ring.has(1), false, 'stream 1 evicted during the snapshot');
    const r = await pending;
    assert.equal(r.frames, 20);
    const got = await framesOf(out);
    assert.deepEqual(got.map((x) => x.data[0]), Array.from({ length: 20 }, (_, i) => i));
    ring.close();
  });

  test('memory stays bounded with many concurrent streams; frames larger than a stream buffer go straight to disk', async () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 64 << 20, maxFiles: 5000, streamBufferBytes: 1024, maxBufferedBytes: 64 * 1024 });
    let maxBuffered = 0;
    for (let round = 0; round < 5; round++) {
      for (let id = 0; id < 2000; id++) {
        ring.write(id, fr(round * 1000 + id, Buffer.alloc(60, id & 0xff)));
        if (id % 97 === 0) maxBuffered = Math.max(maxBuffered, ring.stats.bufferedBytes);
      }
    }
    ring.write(5, fr(9999, Buffer.alloc(5000, 0xab)));
    assert.ok(maxBuffered <= 64 * 1024, `buffered ${maxBuffered}`);
    ring.flush();
    assert.equal(ring.stats.files, 2000);
    assert.deepEqual(onDisk(dir), { files: 2000, bytes: ring.stats.bytes });
    assert.equal(ring.stats.bytes, 2000 * (24 + 5 * rec(60)) + rec(5000));
    const five = await framesOf(join(dir, 'stream-5.pcap'));
    assert.deepEqual(five.map((x) => x.tsMs), [5, 1005, 2005, 3005, 4005, 9999]);
    assert.equal(five[5].data.length, 5000);
    ring.close(true);
    assert.deepEqual(onDisk(dir), { files: 0, bytes: 0 });
    assert.throws(() => ring.write(1, fr(1, Buffer.alloc(1))), StreamRingError);
  });

  test('files of an earlier run in the folder are removed; other files are left alone', () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'stream-12.pcap'), 'stale');
    writeFileSync(join(dir, 'notes.txt'), 'keep');
    const ring = new StreamPcapRing({ dir, maxBytes: 1000, maxFiles: 10 });
    assert.deepEqual(readdirSync(dir).sort(), ['notes.txt']);
    ring.close();
  });

  test('snap length cuts stored frames and keeps the wire length', async () => {
    const ring = new StreamPcapRing({ dir, maxBytes: 1 << 20, maxFiles: 10, snaplen: 64 });
    ring.write(1, fr(1, Buffer.alloc(100, 5), LINKTYPE.ETHERNET, 100));
    ring.end(1);
    const got = await framesOf(join(dir, 'stream-1.pcap'));
    assert.deepEqual([got[0].data.length, got[0].length], [64, 100]);
    assert.equal(ring.stats.bytes, 24 + rec(64));
    ring.close();
  });
});
