import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, createWriteStream, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Frame } from '../types.ts';
import { LINKTYPE } from '../types.ts';
import { readCaptureFile } from './capture-file.ts';
import { PcapWriter, PcapWriterError } from './pcap-writer.ts';
import { buildPcap, prng } from './test-support.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ws-pcap-writer-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Copied {
  tsMs: number;
  length: number;
  data: Buffer;
}

async function readAll(path: string): Promise<Copied[]> {
  const out: Copied[] = [];
  await readCaptureFile(path, (f) => void out.push({ tsMs: f.tsMs, length: f.length, data: Buffer.from(f.data) }));
  return out;
}

function frame(tsMs: number, data: Buffer, length = data.length, linkType: number = LINKTYPE.ETHERNET): Frame {
  return { tsMs, captureLength: data.length, length, linkType, interfaceId: 0, data };
}

function randomFrames(n: number, seed: number, nanos: boolean): Buffer {
  const rnd = prng(seed);
  return buildPcap({
    nanos,
    snaplen: 2000,
    records: Array.from({ length: n }, (_, i) => {
      const len = Math.floor(rnd() * 1500);
      const data = Buffer.alloc(len);
      for (let j = 0; j < len; j++) data[j] = Math.floor(rnd() * 256);
      return { sec: 1_600_000_000 + Math.floor(rnd() * 2e8), frac: Math.floor(rnd() * (nanos ? 1e9 : 1e6)), data, origLen: len + (i % 3 === 0 ? 100 : 0) };
    }),
  }).bytes;
}

describe('PcapWriter', () => {
  for (const resolution of ['us', 'ns'] as const) {
    test(`round trip (${resolution}): frames read back equal, timestamps exactly`, async () => {
      const src = join(dir, `src-${resolution}.pcap`);
      writeFileSync(src, randomFrames(300, 42, resolution === 'ns'));
      const original = await readAll(src);
      const out = join(dir, `out-${resolution}.pcap`);
      // A small buffer so records straddle flushes, and one write per frame straight from the reader.
      const w = new PcapWriter(out, { linkType: LINKTYPE.ETHERNET, resolution, snaplen: 2000, bufferBytes: 4096 });
      await readCaptureFile(src, (f) => void w.writeFrame(f));
      await w.close();
      assert.equal(w.framesWritten, 300);
      assert.equal(w.bytesWritten, readFileSync(out).length);
      const back = await readAll(out);
      assert.equal(back.length, original.length);
      for (let i = 0; i < back.length; i++) {
        assert.equal(back[i].tsMs, original[i].tsMs, `frame ${i} ts`);
        assert.equal(back[i].length, original[i].length, `frame ${i} length`);
        assert.ok(back[i].data.equals(original[i].data), `frame ${i} data`);
      }
      const header = readFileSync(out).subarray(0, 24);
      assert.equal(header.readUInt32LE(0), resolution === 'ns' ? 0xa1b23c4d : 0xa1b2c3d4);
      assert.equal(header.readUInt32LE(16), 2000);
      assert.equal(header.readUInt32LE(20), LINKTYPE.ETHERNET);
    });
  }

  test('snap length cuts frames and keeps the wire length; sub-unit times round to the nearest unit', async () => {
    const out = join(dir, 'snap.pcap');
    const w = new PcapWriter(out, { linkType: LINKTYPE.RAW, snaplen: 100 });
    w.writeFrame(frame(1_700_000_000_000.0004, Buffer.alloc(200, 1), 200, LINKTYPE.RAW)); // 0.4 µs rounds down
    w.writeFrame(frame(1_700_000_000_000.9996, Buffer.alloc(50, 2), 60, LINKTYPE.RAW)); // 999.6 µs rounds up
    w.writeFrame(frame(1_700_000_000_999.9999, Buffer.alloc(1, 3), 1, LINKTYPE.RAW)); // carries into the next second
    await w.close();
    const back = await readAll(out);
    assert.deepEqual(
      back.map((f) => [f.tsMs, f.data.length, f.length]),
      [
        [1_700_000_000_000, 100, 200],
        [1_700_000_000_001, 50, 60],
        [1_700_000_001_000, 1, 1],
      ],
    );
  });

  test('stream target: copies chunks, frames bigger than the buffer, back-pressure via drain()', async () => {
    const chunks: Buffer[] = [];
    let pendingWrites = 0;
    const slow = new Writable({
      highWaterMark: 64,
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        pendingWrites++;
        setTimeout(() => {
          pendingWrites--;
          cb();
        }, 1);
      },
    });
    const w = new PcapWriter(slow, { linkType: LINKTYPE.ETHERNET, bufferBytes: 64 });
    const sent: Buffer[] = [];
    let pauses = 0;
    for (let i = 0; i < 40; i++) {
      const data = Buffer.alloc(i % 5 === 0 ? 300 : 20, i); // 300 > the 64-byte buffer
      sent.push(data);
      if (!w.writeFrame(frame(1_000 + i, data))) {
        pauses++;
        await w.drain();
        assert.ok(!slow.writableNeedDrain);
      }
      data.fill(0xee); // the writer copied it
    }
    await w.close();
    assert.ok(pauses > 0, 'the slow stream asked for pauses');
    assert.equal(pendingWrites, 0);
    const file = join(dir, 'from-stream.pcap');
    writeFileSync(file, Buffer.concat(chunks));
    const back = await readAll(file);
    assert.equal(back.length, 40);
    for (let i = 0; i < 40; i++) {
      assert.equal(back[i].tsMs, 1_000 + i);
      assert.ok(back[i].data.equals(Buffer.alloc(i % 5 === 0 ? 300 : 20, i)), `frame ${i}`);
    }
  });

  test('fd target: keepOpen leaves the descriptor open; a file stream target is ended', async () => {
    const p = join(dir, 'fd.pcap');
    const fd = openSync(p, 'w');
    const w = new PcapWriter(fd, { linkType: LINKTYPE.ETHERNET, keepOpen: true });
    w.writeFrame(frame(5, Buffer.from('abc')));
    await w.close();
    assert.ok(fstatSync(fd).size > 24, 'still open and written');
    closeSync(fd);
    assert.equal((await readAll(p)).length, 1);

    const p2 = join(dir, 'ws.pcap');
    const ws = createWriteStream(p2);
    const w2 = new PcapWriter(ws, { linkType: LINKTYPE.ETHERNET, resolution: 'ns' });
    w2.writeFrame(frame(7.000001, Buffer.from('xyz')));
    await w2.close();
    assert.ok(ws.writableFinished);
    const back = await readAll(p2);
    assert.equal(back[0].tsMs, 7.000001);
  });

  test('misuse is a PcapWriterError: another link type, write after close, bad target', async () => {
    const w = new PcapWriter(join(dir, 'misuse.pcap'), { linkType: LINKTYPE.ETHERNET });
    assert.throws(() => w.writeFrame(frame(1, Buffer.alloc(4), 4, LINKTYPE.RAW)), (e) => e instanceof PcapWriterError && /link type 101/.test(e.message));
    await w.close();
    assert.throws(() => w.writeFrame(frame(1, Buffer.alloc(4))), PcapWriterError);
    assert.throws(() => new PcapWriter(join(dir, 'no', 'such', 'dir.pcap'), { linkType: 1 }), (e) => e instanceof PcapWriterError && e.cause instanceof Error);
    assert.throws(() => new PcapWriter(join(dir, 'x.pcap'), { linkType: 70000 }), RangeError);
  });
});

/** Runs a Wireshark tool; a missing tool fails the test with the package to install. */
function wireshark(tool: 'tshark' | 'editcap', args: string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    assert.fail(`${tool} is not installed: this cross-check needs the Debian package "tshark" (apt-get install tshark)`);
  }
  assert.equal(r.status, 0, `${tool} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function udpFrame(i: number): Buffer {
  // Ethernet + IPv4 + UDP to port 5000 + i with a payload of i bytes; checksums left 0 (tshark does not require them).
  const payloadLen = 10 + i;
  const ipLen = 20 + 8 + payloadLen;
  const b = Buffer.alloc(14 + ipLen);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45;
  b.writeUInt16BE(ipLen, 16);
  b[22] = 64;
  b[23] = 17;
  b.set([10, 0, 0, 1], 26);
  b.set([10, 0, 0, 2], 30);
  b.writeUInt16BE(40000, 34);
  b.writeUInt16BE(5000 + i, 36);
  b.writeUInt16BE(8 + payloadLen, 38);
  b.fill(0x61 + (i % 26), 42);
  return b;
}

describe('cross-check with Wireshark tools (Debian package tshark)', () => {
  test('tshark reads what PcapWriter wrote: times, lengths, UDP ports', async () => {
    const p = join(dir, 'for-tshark.pcap');
    const w = new PcapWriter(p, { linkType: LINKTYPE.ETHERNET, resolution: 'ns', snaplen: 40 });
    // Exactly representable: 123 ms + 3/4096 ms = 123000732.421875 ns, written as the nearest ns.
    const base = 1_700_000_000_123 + 3 / 4096;
    for (let i = 0; i < 5; i++) w.writeFrame(frame(base + i * 1000.5, udpFrame(i)));
    await w.close();
    const out = wireshark('tshark', ['-r', p, '-T', 'fields', '-E', 'separator=,', '-e', 'frame.time_epoch', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'udp.dstport']);
    const rows = out.trim().split('\n').map((l) => l.split(','));
    assert.equal(rows.length, 5, out);
    for (let i = 0; i < 5; i++) {
      const [epoch, len, capLen, port] = rows[i];
      const wantNs = 1_700_000_000_123_000_732n + BigInt(i) * 1_000_500_000n;
      const [s, f = ''] = epoch.split('.');
      assert.equal(BigInt(s) * 1_000_000_000n + BigInt(f.padEnd(9, '0').slice(0, 9)), wantNs, `frame ${i} time ${epoch}`);
      assert.equal(Number(len), udpFrame(i).length, `frame ${i} len`);
      assert.equal(Number(capLen), 40, `frame ${i} cap_len (snaplen 40)`);
      assert.equal(Number(port), 5000 + i, `frame ${i} port`);
    }
  });

  test('editcap-converted pcapng reads the same frames as the pcap it came from', async () => {
    const p = join(dir, 'for-editcap.pcap');
    writeFileSync(p, randomFrames(50, 9, true));
    const ng = join(dir, 'from-editcap.pcapng');
    wireshark('editcap', ['-F', 'pcapng', p, ng]);
    assert.equal(readFileSync(ng).readUInt32LE(0), 0x0a0d0d0a);
    const a = await readAll(p);
    const b = await readAll(ng);
    assert.equal(b.length, a.length);
    for (let i = 0; i < a.length; i++) {
      assert.equal(b[i].tsMs, a[i].tsMs, `frame ${i} ts`);
      assert.equal(b[i].length, a[i].length, `frame ${i} length`);
      assert.ok(b[i].data.equals(a[i].data), `frame ${i} data`);
    }
  });
});
