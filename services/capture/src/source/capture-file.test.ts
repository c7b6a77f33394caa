import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PassThrough, Readable } from 'node:stream';
import type { Frame } from '../types.ts';
import { LINKTYPE } from '../types.ts';
import { CaptureFileError, readCaptureFile, type CaptureFileSummary, type CaptureInput, type ReadCaptureFileOptions } from './capture-file.ts';
import { buildPcap, chunkedStream, isNearestDouble, PcapngBuilder, prng, type BuiltFile, type ExpectedFrame } from './test-support.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ws-capture-file-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Copied {
  tsMs: number;
  captureLength: number;
  length: number;
  linkType: number;
  interfaceId: number;
  data: Buffer;
}

function copy(f: Frame): Copied {
  return { tsMs: f.tsMs, captureLength: f.captureLength, length: f.length, linkType: f.linkType, interfaceId: f.interfaceId, data: Buffer.from(f.data) };
}

async function collect(
  input: CaptureInput,
  opts: ReadCaptureFileOptions = {},
): Promise<{ frames: Copied[]; summary?: CaptureFileSummary; error?: unknown }> {
  const frames: Copied[] = [];
  try {
    const summary = await readCaptureFile(input, (f) => void frames.push(copy(f)), opts);
    return { frames, summary };
  } catch (error) {
    return { frames, error };
  }
}

function assertFrame(got: Copied, want: ExpectedFrame, where: string): void {
  assert.ok(isNearestDouble(got.tsMs, want.tsNum, want.tsDen), `${where}: tsMs ${got.tsMs} is not the double nearest to ${want.tsNum}/${want.tsDen}`);
  assert.equal(got.captureLength, want.captureLength, `${where}: captureLength`);
  assert.equal(got.data.length, want.captureLength, `${where}: data.length`);
  assert.equal(got.length, want.length, `${where}: length`);
  assert.equal(got.linkType, want.linkType, `${where}: linkType`);
  assert.equal(got.interfaceId, want.interfaceId, `${where}: interfaceId`);
  assert.ok(got.data.equals(want.data), `${where}: data`);
}

function assertFrames(got: Copied[], want: ExpectedFrame[], where: string): void {
  assert.equal(got.length, want.length, `${where}: frame count`);
  for (let i = 0; i < want.length; i++) assertFrame(got[i], want[i], `${where} frame ${i}`);
}

function fileOf(bytes: Buffer, name: string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

function payload(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

function assertCaptureError(err: unknown, kind: string, maxOffset: number, where: string): CaptureFileError {
  assert.ok(err instanceof CaptureFileError, `${where}: expected CaptureFileError, got ${String(err)}`);
  assert.equal(err.kind, kind, `${where}: kind (${err.message})`);
  assert.ok(err.offset <= maxOffset, `${where}: offset ${err.offset} > ${maxOffset}`);
  assert.match(err.message, new RegExp(`offset ${err.offset}\\b`), `${where}: message names the offset: ${err.message}`);
  return err;
}

/** A small multi-record pcap (both byte orders, µs or ns). */
function samplePcap(byteOrder: 'le' | 'be', nanos: boolean): BuiltFile {
  return buildPcap({
    byteOrder,
    nanos,
    linkTypeField: LINKTYPE.ETHERNET,
    snaplen: 96,
    records: [
      { sec: 1_700_000_000, frac: nanos ? 123_456_789 : 123_456, data: payload(60, 1) },
      { sec: 1_700_000_001, frac: nanos ? 999_999_999 : 999_999, data: payload(96, 2), origLen: 1514 },
      { sec: 1_700_000_002, frac: 0, data: payload(0, 3), origLen: 0 },
      { sec: 4_294_967_295, frac: nanos ? 1 : 1, data: payload(13, 4) },
    ],
  });
}

/** Two sections of different byte order; interfaces with different link types, resolutions and an offset; EPB/SPB/OPB and skipped blocks. */
function samplePcapng(): BuiltFile {
  const b = new PcapngBuilder();
  b.shb('le');
  b.idb({ linkType: LINKTYPE.ETHERNET, snaplen: 0, name: 'eth0' }); // default µs
  b.idb({ linkType: LINKTYPE.RAW, snaplen: 65535, tsresol: 9 }); // ns
  b.epb(0, 1_700_000_000_123_456n, payload(42, 10));
  b.epb(1, 1_700_000_000_987_654_321n, payload(20, 11), { origLen: 1500, options: [{ code: 1, value: Buffer.from('comment') }] });
  b.other(5, Buffer.alloc(20, 1)); // ISB
  b.other(0x0badcafe, Buffer.from('an unknown block type'));
  b.spb(payload(33, 12), 33); // interface 0, no timestamp
  b.opb(1, 1_700_000_001_000_000_001n, payload(17, 13), { drops: 2 });
  b.shb('be');
  // 2^-20 s units with a tsoffset: counts are relative to the offset.
  b.idb({ linkType: LINKTYPE.LINUX_SLL, snaplen: 128, tsresol: 0x80 | 20, tsoffset: 1_700_000_000n });
  b.idb({ linkType: LINKTYPE.NULL, snaplen: 0, tsresol: 3, tsoffset: -5n }); // ms, negative offset
  b.epb(0, (5n << 20n) + 12345n, payload(64, 14));
  b.other(4, Buffer.from([0, 0, 0, 0])); // NRB (just an end-of-records)
  b.epb(1, 1_700_000_009_250n, payload(8, 15));
  b.spb(payload(200, 16), 300); // capped by interface 0's snaplen (128)
  b.opb(0, 1n << 40n, payload(5, 17));
  return b.build();
}

describe('pcap', () => {
  for (const byteOrder of ['le', 'be'] as const) {
    for (const nanos of [false, true]) {
      test(`reads ${byteOrder} ${nanos ? 'ns' : 'µs'} pcap (path, stream, URL, tiny chunks)`, async () => {
        const built = samplePcap(byteOrder, nanos);
        const path = fileOf(built.bytes, `sample-${byteOrder}-${nanos}.pcap`);
        for (const [name, input, opts] of [
          ['path', path, {}],
          ['url', pathToFileURL(path), { chunkBytes: 7 }],
          ['stream', chunkedStream(built.bytes, 5), {}],
          ['1-byte chunks', chunkedStream(built.bytes, 1), { chunkBytes: 1 }],
        ] as const) {
          const r = await collect(input, opts);
          assert.equal(r.error, undefined, `${name}: ${String(r.error)}`);
          assertFrames(r.frames, built.frames, name);
          const s = r.summary!;
          assert.equal(s.format, 'pcap');
          assert.equal(s.frames, 4);
          assert.equal(s.bytes, 60 + 96 + 0 + 13);
          assert.equal(s.fileBytes, built.bytes.length);
          assert.deepEqual(s.linkTypes, [LINKTYPE.ETHERNET]);
          assert.equal(s.truncatedFrames, 1);
          assert.equal(s.firstTsMs, r.frames[0].tsMs);
          assert.equal(s.lastTsMs, r.frames[3].tsMs);
          assert.equal(s.sections, 1);
          assert.deepEqual(s.interfaces, [
            { section: 0, id: 0, linkType: LINKTYPE.ETHERNET, snaplen: 96, tsUnitsPerSecond: nanos ? 1e9 : 1e6, tsOffsetSeconds: 0 },
          ]);
        }
      });
    }
  }

  test('timestamps are the nearest double to the exact time (random µs and ns)', async () => {
    const rnd = prng(7);
    for (const nanos of [false, true]) {
      const records = Array.from({ length: 500 }, (_, i) => ({
        sec: Math.floor(rnd() * 2 ** 32),
        frac: Math.floor(rnd() * (nanos ? 1e9 : 1e6)),
        data: payload(1, i),
      }));
      const built = buildPcap({ nanos, records });
      const r = await collect(chunkedStream(built.bytes, 4096));
      assert.equal(r.error, undefined);
      assertFrames(r.frames, built.frames, nanos ? 'ns' : 'µs');
    }
  });

  test('link-type field: FCS bits are not part of the link type', async () => {
    // libpcap: bit 26 says bits 28-31 give the FCS length in 16-bit words.
    const built = buildPcap({ linkTypeField: 0x24000000 | LINKTYPE.ETHERNET, records: [{ sec: 1, frac: 2, data: payload(64, 1) }] });
    const r = await collect(chunkedStream(built.bytes, 100));
    assert.equal(r.error, undefined);
    assert.equal(r.frames[0].linkType, LINKTYPE.ETHERNET);
    assert.deepEqual(r.summary!.linkTypes, [LINKTYPE.ETHERNET]);
    assert.equal(r.summary!.interfaces[0].fcsBytes, 4);
  });

  test('a record with caplen > snaplen is corrupt, after the frames before it', async () => {
    const built = buildPcap({
      snaplen: 100,
      records: [
        { sec: 1, frac: 0, data: payload(50, 1) },
        { sec: 2, frac: 0, data: payload(101, 2) },
      ],
    });
    const r = await collect(chunkedStream(built.bytes, 64));
    assertFrames(r.frames, built.frames.slice(0, 1), 'before corrupt');
    const err = assertCaptureError(r.error, 'corrupt', 24 + 16 + 50, 'caplen > snaplen');
    assert.equal(err.offset, 24 + 16 + 50);
    assert.equal(err.framesDelivered, 1);
    assert.match(err.message, /snap length 100/);
  });

  test('an absurd caplen with snaplen 0 is corrupt, not an allocation', async () => {
    const built = buildPcap({ snaplen: 0, records: [{ sec: 1, frac: 0, data: payload(10, 1), caplenField: 0xfffffff0 }] });
    const r = await collect(chunkedStream(built.bytes, 64));
    assertCaptureError(r.error, 'corrupt', 24, 'absurd caplen');
  });

  test('a large claimed caplen in a short file is truncated without allocating it', async () => {
    const rss0 = process.memoryUsage().rss;
    const built = buildPcap({ snaplen: 0, records: [{ sec: 1, frac: 0, data: payload(10, 1), caplenField: 250 * 1024 * 1024 }] });
    const r = await collect(fileOf(built.bytes, 'big-claim.pcap'));
    assertCaptureError(r.error, 'truncated', 24, 'big claim');
    assert.ok(process.memoryUsage().rss - rss0 < 64 * 1024 * 1024, 'no 250 MiB buffer');
  });

  test('a record larger than the read chunk is read whole', async () => {
    const big = payload(200_000, 9);
    const built = buildPcap({ snaplen: 262144, records: [{ sec: 1, frac: 1, data: payload(10, 1) }, { sec: 2, frac: 2, data: big }, { sec: 3, frac: 3, data: payload(10, 3) }] });
    const r = await collect(fileOf(built.bytes, 'big.pcap'), { chunkBytes: 4096 });
    assert.equal(r.error, undefined);
    assertFrames(r.frames, built.frames, 'big record');
  });

  test('unsupported version, bad magic, empty file', async () => {
    const v3 = buildPcap({ versionMajor: 3, records: [] });
    assertCaptureError((await collect(chunkedStream(v3.bytes, 100))).error, 'unsupported', 0, 'version 3');
    const garbage = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const g = assertCaptureError((await collect(fileOf(garbage, 'garbage.pcap'))).error, 'not-capture', 0, 'garbage');
    assert.match(g.message, /not a pcap or pcapng file/);
    assert.match(g.message, /garbage\.pcap/, 'names the file');
    const e = assertCaptureError((await collect(fileOf(Buffer.alloc(0), 'empty.pcap'))).error, 'not-capture', 0, 'empty');
    assert.match(e.message, /not a pcap or pcapng file/);
    assertCaptureError((await collect(chunkedStream(Buffer.from([0xd4, 0xc3]), 1))).error, 'truncated', 0, 'half a magic');
  });

  test('header only: no frames', async () => {
    const built = buildPcap({ records: [] });
    const r = await collect(chunkedStream(built.bytes, 3));
    assert.equal(r.error, undefined);
    assert.equal(r.summary!.frames, 0);
    assert.equal(r.summary!.firstTsMs, undefined);
  });

  test('a missing file or a folder is an io CaptureFileError', async () => {
    const r = await collect(join(dir, 'does-not-exist.pcap'));
    const err = assertCaptureError(r.error, 'io', 0, 'missing');
    assert.ok(err.cause instanceof Error);
    assert.match(err.message, /does-not-exist\.pcap/);
    const d = assertCaptureError((await collect(dir)).error, 'io', 0, 'folder');
    assert.match(d.message, /EISDIR/);
  });

  test('a named pipe path is read sequentially (as with --pcap /dev/stdin)', async () => {
    const built = samplePcap('be', false);
    const fifo = join(dir, 'capture.fifo');
    const mk = spawnSync('mkfifo', [fifo]);
    assert.equal(mk.status, 0, `mkfifo: ${mk.stderr}`);
    const writer = createWriteStream(fifo);
    // Written in pieces, so the reader meets partial records at the pipe's boundaries.
    void (async () => {
      for (let i = 0; i < built.bytes.length; i += 50) {
        if (!writer.write(built.bytes.subarray(i, i + 50))) await once(writer, 'drain');
        await new Promise((r) => setTimeout(r, 1));
      }
      writer.end();
    })();
    const r = await collect(fifo, { chunkBytes: 64 });
    assert.equal(r.error, undefined, String(r.error));
    assertFrames(r.frames, built.frames, 'fifo');
    assert.equal(r.summary!.fileBytes, built.bytes.length);
  });

  test('a stream with an encoding is refused clearly', async () => {
    const s = Readable.from(['not bytes']);
    const r = await collect(s as unknown as AsyncIterable<Uint8Array>);
    const err = assertCaptureError(r.error, 'io', 0, 'string stream');
    assert.match(err.message, /encoding/);
    assert.ok(err.cause instanceof TypeError);
  });

  test('onProgress reports bytes read and the file size', async () => {
    const built = samplePcap('le', false);
    const path = fileOf(built.bytes, 'progress.pcap');
    const calls: [number, number | undefined][] = [];
    await readCaptureFile(path, () => {}, { chunkBytes: 32, onProgress: (n, total) => calls.push([n, total]) });
    // The buffer grows to hold a 112-byte record, so reads get larger than 32: at least a few calls.
    assert.ok(calls.length >= 3, `${calls.length} calls`);
    for (let i = 1; i < calls.length; i++) assert.ok(calls[i][0] > calls[i - 1][0]);
    assert.deepEqual(calls.at(-1), [built.bytes.length, built.bytes.length]);
    const streamed: (number | undefined)[] = [];
    await readCaptureFile(chunkedStream(built.bytes, 50), () => {}, { onProgress: (_n, total) => streamed.push(total) });
    assert.ok(streamed.length > 0 && streamed.every((t) => t === undefined));
  });
});

describe('pcapng', () => {
  test('two sections of different byte order, interfaces with different link types and resolutions, EPB/SPB/OPB, skipped blocks', async () => {
    const built = samplePcapng();
    for (const [name, input, opts] of [
      ['path', fileOf(built.bytes, 'sample.pcapng'), {}],
      ['stream 3', chunkedStream(built.bytes, 3), { chunkBytes: 5 }],
      ['1-byte chunks', chunkedStream(built.bytes, 1), { chunkBytes: 1 }],
    ] as const) {
      const r = await collect(input, opts);
      assert.equal(r.error, undefined, `${name}: ${String(r.error)}`);
      assertFrames(r.frames, built.frames, name);
      const s = r.summary!;
      assert.equal(s.format, 'pcapng');
      assert.equal(s.frames, built.frames.length);
      assert.equal(s.sections, 2);
      assert.deepEqual(s.linkTypes, [LINKTYPE.ETHERNET, LINKTYPE.RAW, LINKTYPE.LINUX_SLL, LINKTYPE.NULL]);
      assert.deepEqual(s.interfaces, [
        { section: 0, id: 0, linkType: LINKTYPE.ETHERNET, snaplen: 0, tsUnitsPerSecond: 1e6, tsOffsetSeconds: 0, name: 'eth0' },
        { section: 0, id: 1, linkType: LINKTYPE.RAW, snaplen: 65535, tsUnitsPerSecond: 1e9, tsOffsetSeconds: 0 },
        { section: 1, id: 0, linkType: LINKTYPE.LINUX_SLL, snaplen: 128, tsUnitsPerSecond: 2 ** 20, tsOffsetSeconds: 1_700_000_000 },
        { section: 1, id: 1, linkType: LINKTYPE.NULL, snaplen: 0, tsUnitsPerSecond: 1e3, tsOffsetSeconds: -5 },
      ]);
      assert.equal(s.fileBytes, built.bytes.length);
    }
    // Spot checks that do not rely on the builder's arithmetic.
    const r = await collect(chunkedStream(built.bytes, 64));
    assert.equal(r.frames[0].tsMs, 1_700_000_000_123.456);
    assert.equal(r.frames[2].tsMs, r.frames[1].tsMs, 'SPB repeats the previous timestamp');
    assert.equal(r.frames[2].captureLength, 33);
    assert.equal(r.frames[4].tsMs, (1_700_000_005 + 12345 / 2 ** 20) * 1000);
    assert.equal(r.frames[5].tsMs, 1_700_000_009_250 - 5000);
    assert.equal(r.frames[6].captureLength, 128, 'SPB capped by snaplen');
    assert.equal(r.frames[6].length, 300);
  });

  test('fine and exotic resolutions: 2^-30, 10^-12 and 2^-64 units', async () => {
    const rnd = prng(11);
    const b = new PcapngBuilder().shb('be');
    b.idb({ linkType: 1, tsresol: 0x80 | 30 });
    b.idb({ linkType: 1, tsresol: 12, tsoffset: 1_700_000_000n }); // picoseconds: 64 bits hold only ~213 days
    b.idb({ linkType: 1, tsresol: 0x80 | 64, tsoffset: 1_700_000_000n });
    b.idb({ linkType: 1, tsresol: 9, tsoffset: 1_000n });
    for (let i = 0; i < 300; i++) {
      const iface = i % 4;
      const sec = BigInt(1_600_000_000 + Math.floor(rnd() * 200_000_000));
      let ts: bigint;
      if (iface === 0) ts = (sec << 30n) + BigInt(Math.floor(rnd() * 2 ** 30));
      else if (iface === 1) ts = BigInt(Math.floor(rnd() * 1.8e7)) * 10n ** 12n + BigInt(Math.floor(rnd() * 1e12));
      else if (iface === 2) ts = BigInt(Math.floor(rnd() * 2 ** 32)) * BigInt(Math.floor(rnd() * 2 ** 32));
      else ts = sec * 10n ** 9n + BigInt(Math.floor(rnd() * 1e9));
      b.epb(iface, ts, payload(4, i));
    }
    const built = b.build();
    const r = await collect(chunkedStream(built.bytes, 1000));
    assert.equal(r.error, undefined, String(r.error));
    // 2^-64 units need BigInt and a few roundings: allow an ulp there, demand the nearest double elsewhere.
    for (let i = 0; i < built.frames.length; i++) {
      const want = built.frames[i];
      if (i % 4 === 2) {
        const exact = Number(want.tsNum) / Number(want.tsDen);
        assert.ok(Math.abs(r.frames[i].tsMs - exact) <= exact * 2 ** -51, `frame ${i}: ${r.frames[i].tsMs} vs ${exact}`);
      } else {
        assertFrame(r.frames[i], want, `frame ${i}`);
      }
    }
  });

  test('corrupt blocks reject after the frames before them, naming the block offset', async () => {
    const good = () => new PcapngBuilder().shb('le').idb({ linkType: 1 }).epb(0, 1_000_000n, payload(10, 1));
    const cases: [string, (b: PcapngBuilder) => void, string, RegExp][] = [
      ['trailer mismatch', (b) => b.block(6, Buffer.alloc(24), { trailerLength: 40 }), 'corrupt', /trailing length 40/],
      ['length not a multiple of 4', (b) => b.block(6, Buffer.alloc(24), { lengthField: 38 }), 'corrupt', /block length 38/],
      ['length below 12', (b) => b.block(6, Buffer.alloc(24), { lengthField: 8 }), 'corrupt', /block length 8/],
      ['absurd length', (b) => b.block(6, Buffer.alloc(24), { lengthField: 0xfffffff0 }), 'corrupt', /block length 4294967280/],
      ['undeclared interface', (b) => b.epb(3, 1n, payload(4, 1)), 'corrupt', /interface 3 not declared/],
      ['caplen overruns block', (b) => b.block(6, Buffer.concat([Buffer.alloc(12), Buffer.from([100, 0, 0, 0, 100, 0, 0, 0]), Buffer.alloc(8)])), 'corrupt', /captured length 100 overruns/],
      ['bad byte-order magic in a later section', (b) => b.block(0x0a0d0d0a, Buffer.concat([Buffer.from([1, 2, 3, 4]), Buffer.alloc(12)])), 'corrupt', /byte-order magic/],
      ['unsupported section version', (b) => b.shb('be', { major: 2 }), 'unsupported', /version 2\.0/],
      ['IDB option overruns', (b) => b.block(1, Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([9, 0, 200, 0, 6, 0, 0, 0])])), 'corrupt', /option 9/],
      ['bad if_tsresol length', (b) => b.idb({ linkType: 1, extraOptions: [{ code: 9, value: Buffer.from([6, 6]) }] }), 'corrupt', /if_tsresol length 2/],
    ];
    for (const [name, damage, kind, re] of cases) {
      const b = good();
      const before = b.build();
      damage(b);
      const bytes = b.build().bytes;
      const r = await collect(chunkedStream(bytes, 16));
      assertFrames(r.frames, before.frames, name);
      const err = assertCaptureError(r.error, kind, before.bytes.length, name);
      assert.equal(err.offset, before.bytes.length, `${name}: offset is the damaged block's`);
      assert.equal(err.framesDelivered, 1, name);
      assert.match(err.message, re, name);
    }
    const spbFirst = new PcapngBuilder().shb('le').block(3, Buffer.from([4, 0, 0, 0, 1, 2, 3, 4])).build();
    assert.match(assertCaptureError((await collect(chunkedStream(spbFirst.bytes, 16))).error, 'corrupt', 100, 'SPB first').message, /before any interface/);
    const badBom = Buffer.from(new PcapngBuilder().shb('le').build().bytes);
    badBom.writeUInt32LE(0xdeadbeef, 8);
    assertCaptureError((await collect(chunkedStream(badBom, 16))).error, 'not-capture', 0, 'bad first BOM');
  });
});

describe('truncation at every byte offset', () => {
  const files: [string, BuiltFile][] = [
    ['pcap le µs', samplePcap('le', false)],
    ['pcap be ns', samplePcap('be', true)],
    ['pcapng', samplePcapng()],
  ];
  for (const [name, built] of files) {
    test(name, async () => {
      const rnd = prng(built.bytes.length);
      for (let cut = 0; cut <= built.bytes.length; cut++) {
        const bytes = built.bytes.subarray(0, cut);
        const complete = built.frameEnds.filter((e) => e <= cut).length;
        // Alternate inputs and chunk sizes so every boundary meets every buffer state.
        const input = cut % 3 === 0 ? fileOf(bytes, 'cut.bin') : chunkedStream(bytes, 1 + Math.floor(rnd() * 40));
        const r = await collect(input, { chunkBytes: 1 + Math.floor(rnd() * 64) });
        const where = `${name} cut at ${cut}`;
        assertFrames(r.frames, built.frames.slice(0, complete), where);
        if (cut > 0 && built.cleanEnds.has(cut)) {
          assert.equal(r.error, undefined, `${where}: clean boundary should resolve, got ${String(r.error)}`);
          assert.equal(r.summary!.frames, complete);
        } else {
          const err = assertCaptureError(r.error, cut === 0 ? 'not-capture' : 'truncated', cut, where);
          assert.equal(err.framesDelivered, complete, where);
          if (cut > 0) assert.match(err.message, /truncated/);
        }
      }
    });
  }
});

describe('pacing, back-pressure, abort', () => {
  const threeFrames = buildPcap({
    records: [0, 50_000, 100_000].map((us, i) => ({ sec: 1_700_000_000, frac: us, data: payload(20, i) })),
  });

  test("speed 'recorded' paces by timestamps; 'max' does not wait; a number multiplies", async () => {
    const timed = async (speed: ReadCaptureFileOptions['speed']): Promise<number> => {
      const t0 = performance.now();
      const s = await readCaptureFile(chunkedStream(threeFrames.bytes, 100), () => {}, { speed });
      assert.equal(s.frames, 3);
      return performance.now() - t0;
    };
    const recorded = await timed('recorded');
    assert.ok(recorded >= 90 && recorded < 2000, `recorded took ${recorded} ms`);
    const max = await timed('max');
    assert.ok(max < 50, `max took ${max} ms`);
    const double = await timed(2);
    assert.ok(double >= 45 && double < 2000, `speed 2 took ${double} ms`);
    const half = await timed(0.5);
    assert.ok(half >= 180 && half < 3000, `speed 0.5 took ${half} ms`);
    await assert.rejects(readCaptureFile(chunkedStream(threeFrames.bytes, 100), () => {}, { speed: -1 }), RangeError);
  });

  test('an async onFrame is awaited before the next frame, and its frame stays valid meanwhile', async () => {
    const built = samplePcap('le', true);
    let inFlight = 0;
    let seen = 0;
    const t0 = performance.now();
    await readCaptureFile(
      chunkedStream(built.bytes, 3),
      async (f) => {
        inFlight++;
        assert.equal(inFlight, 1, 'no overlapping onFrame calls');
        const before = Buffer.from(f.data);
        await new Promise((r) => setTimeout(r, 10));
        assert.ok(f.data.equals(before), 'data unchanged while the callback is pending');
        assert.ok(f.data.equals(built.frames[seen].data));
        seen++;
        inFlight--;
      },
      { chunkBytes: 8 },
    );
    assert.equal(seen, 4);
    assert.ok(performance.now() - t0 >= 35, 'each callback was waited for');
  });

  test('a rejecting onFrame rejects the read with its error', async () => {
    const boom = new Error('consumer failed');
    let calls = 0;
    await assert.rejects(
      readCaptureFile(chunkedStream(samplePcapng().bytes, 50), async () => {
        if (++calls === 2) throw boom;
      }),
      (e) => e === boom,
    );
    assert.equal(calls, 2);
  });

  test('abort: from onFrame, during a pacing wait, before starting; a stream is destroyed', async () => {
    const built = samplePcap('le', false);
    const reason = new Error('stop');
    const ac = new AbortController();
    let n = 0;
    const stream = chunkedStream(built.bytes, 20);
    await assert.rejects(
      readCaptureFile(stream, () => {
        if (++n === 2) ac.abort(reason);
      }, { signal: ac.signal, chunkBytes: 16 }),
      (e) => e === reason,
    );
    assert.equal(n, 2, 'no frame after the abort');
    assert.ok(stream.destroyed, 'the stream was released');

    const slow = buildPcap({ records: [{ sec: 1, frac: 0, data: payload(4, 1) }, { sec: 11, frac: 0, data: payload(4, 2) }] });
    const ac2 = new AbortController();
    const frames: number[] = [];
    const t0 = performance.now();
    setTimeout(() => ac2.abort(), 50);
    await assert.rejects(readCaptureFile(chunkedStream(slow.bytes, 100), (f) => void frames.push(f.tsMs), { speed: 'recorded', signal: ac2.signal }), {
      name: 'AbortError',
    });
    const took = performance.now() - t0;
    assert.ok(took < 1000, `abort interrupted the 10 s wait (took ${took} ms)`);
    assert.equal(frames.length, 1);

    // A stream that never sends more: the abort does not wait for it.
    const stalled = new PassThrough();
    stalled.write(built.bytes.subarray(0, 30));
    const ac4 = new AbortController();
    setTimeout(() => ac4.abort(), 50);
    const t1 = performance.now();
    await assert.rejects(readCaptureFile(stalled, () => {}, { signal: ac4.signal }), { name: 'AbortError' });
    assert.ok(performance.now() - t1 < 1000);
    assert.ok(stalled.destroyed, 'the stalled stream was released');

    const ac3 = new AbortController();
    ac3.abort();
    let called = false;
    await assert.rejects(readCaptureFile(chunkedStream(built.bytes, 100), () => void (called = true), { signal: ac3.signal }), { name: 'AbortError' });
    assert.equal(called, false);
  });
});
