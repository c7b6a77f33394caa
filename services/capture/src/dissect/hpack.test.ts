import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HpackDecoder, HpackError } from './hpack.ts';
import { HUFFMAN_CODES, HUFFMAN_CODE_LENGTHS, huffmanDecode, huffmanMaxDecodedLength } from './hpack-huffman.ts';
import { hpackEncodeHuffman, hpackString, hpackInt, hpackPrefixed } from './http2-testing.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (fields: string[]) => {
  const out: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) out.push([fields[i], fields[i + 1]]);
  return out;
};

function check(d: HpackDecoder, block: string, fields: [string, string][], table: [string, string][], size: number) {
  const r = d.decode(hex(block));
  assert.deepEqual(pairs(r.fields), fields);
  assert.equal(r.unknown, 0);
  assert.deepEqual(d.entries(), table);
  assert.equal(d.tableSize(), size);
}

test('RFC 7541 C.2: literal fields and an indexed field', () => {
  const d = new HpackDecoder();
  check(d, '400a637573746f6d2d6b65790d637573746f6d2d686561646572', [['custom-key', 'custom-header']], [['custom-key', 'custom-header']], 55);
  const d2 = new HpackDecoder();
  check(d2, '040c2f73616d706c652f70617468', [[':path', '/sample/path']], [], 0);
  const d3 = new HpackDecoder();
  check(d3, '100870617373776f726406736563726574', [['password', 'secret']], [], 0);
  const d4 = new HpackDecoder();
  check(d4, '82', [[':method', 'GET']], [], 0);
});

const REQ1: [string, string][] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: [string, string][] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];

for (const [section, blocks] of [
  ['C.3 (plain)', ['828684410f7777772e6578616d706c652e636f6d', '828684be58086e6f2d6361636865', '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565']],
  ['C.4 (Huffman)', ['828684418cf1e3c2e5f23a6ba0ab90f4ff', '828684be5886a8eb10649cbf', '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf']],
] as const) {
  test(`RFC 7541 ${section}: three requests on one connection`, () => {
    const d = new HpackDecoder();
    check(d, blocks[0], REQ1, [[':authority', 'www.example.com']], 57);
    check(d, blocks[1], REQ2, [['cache-control', 'no-cache'], [':authority', 'www.example.com']], 110);
    check(d, blocks[2], REQ3, [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']], 164);
  });
}

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
for (const [section, blocks] of [
  ['C.5 (plain)', [
    '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d',
    '4803333037c1c0bf',
    '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31',
  ]],
  ['C.6 (Huffman)', [
    '488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3',
    '4883640effc1c0bf',
    '88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007',
  ]],
] as const) {
  test(`RFC 7541 ${section}: three responses with a 256-byte table (evictions)`, () => {
    const d = new HpackDecoder({ tableSize: 256 });
    check(d, blocks[0], [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', 'https://www.example.com']],
      [['location', 'https://www.example.com'], ['date', DATE1], ['cache-control', 'private'], [':status', '302']], 222);
    check(d, blocks[1], [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', 'https://www.example.com']],
      [[':status', '307'], ['location', 'https://www.example.com'], ['date', DATE1], ['cache-control', 'private']], 222);
    check(d, blocks[2], [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', 'https://www.example.com'], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]],
      [['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE2]], 215);
  });
}

test('Huffman: the derived canonical codes match Appendix B samples and form a complete code', () => {
  assert.equal(HUFFMAN_CODES[0], 0x1ff8);
  assert.equal(HUFFMAN_CODES[48], 0x0); // '0'
  assert.equal(HUFFMAN_CODES[32], 0x14); // ' '
  assert.equal(HUFFMAN_CODES[255], 0x3ffffee);
  assert.equal(HUFFMAN_CODES[256], 0x3fffffff); // EOS
  assert.equal(HUFFMAN_CODES[10], 0x3ffffffc);
  let kraft = 0;
  for (const len of HUFFMAN_CODE_LENGTHS) kraft += 2 ** -len;
  assert.equal(kraft, 1);
});

test('Huffman: every byte value round-trips, alone and in long strings', () => {
  const out = Buffer.alloc(huffmanMaxDecodedLength(4096));
  for (let b = 0; b < 256; b++) {
    const enc = hpackEncodeHuffman(Buffer.from([b]));
    assert.equal(huffmanDecode(enc, 0, enc.length, out), 1);
    assert.equal(out[0], b);
  }
  const all = Buffer.alloc(1024);
  for (let i = 0; i < all.length; i++) all[i] = (i * 131 + 7) & 0xff;
  const enc = hpackEncodeHuffman(all);
  const n = huffmanDecode(enc, 0, enc.length, out);
  assert.equal(n, all.length);
  assert.deepEqual(out.subarray(0, n), all);
});

test('Huffman: EOS inside a string, padding longer than 7 bits and zero padding are errors', () => {
  const out = Buffer.alloc(64);
  // EOS (30 ones) followed by two 1 bits.
  assert.equal(huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, out), -1);
  // 'a' (00011) then 11 bits of 1s: padding longer than 7 bits.
  assert.equal(huffmanDecode(Buffer.from([0x1f, 0xff]), 0, 2, out), -1);
  // 'a' then 000: padding must be 1 bits.
  assert.equal(huffmanDecode(Buffer.from([0x18]), 0, 1, out), -1);
  // 'a' then 111: fine.
  assert.equal(huffmanDecode(Buffer.from([0x1f]), 0, 1, out), 1);
  assert.equal(out[0], 0x61);
});

test('malformed blocks throw HpackError and leave the decoder in partial mode', () => {
  const cases: [string, Buffer][] = [
    ['index 0', Buffer.from([0x80])],
    ['index beyond the table', Buffer.from([0xbe])],
    ['truncated integer', Buffer.from([0xff])],
    ['integer overflow', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])],
    ['string overruns the block', Buffer.from([0x40, 0x05, 0x61])],
    ['bad Huffman', Buffer.concat([Buffer.from([0x00, 0x81, 0x18]), hpackString('v')])],
    ['size update over the setting', Buffer.concat([Buffer.from([0x3f]), hpackInt(8000 - 31)])],
    ['size update after a field', Buffer.from([0x82, 0x20])],
  ];
  for (const [what, block] of cases) {
    const d = new HpackDecoder();
    assert.throws(() => d.decode(block), (e: unknown) => e instanceof HpackError && e.name === 'HpackError', what);
    assert.notEqual(d.lostReason, null, what);
  }
});

test('partial mode: entries inserted after the loss decode exactly, older references are counted unknown', () => {
  const d = new HpackDecoder();
  // Known: two entries.
  d.decode(Buffer.concat([Buffer.from([0x40]), hpackString('a'), hpackString('1'), Buffer.from([0x40]), hpackString('b'), hpackString('2')]));
  d.markLost('capture gap');
  // New insertion x: 3, then reference 62 (x), 63 (unknown: was b) and a static entry.
  const r = d.decode(Buffer.concat([Buffer.from([0x40]), hpackString('x'), hpackString('3'), Buffer.from([0x80 | 62, 0x80 | 63, 0x82])]));
  assert.deepEqual(pairs(r.fields), [['x', '3'], ['x', '3'], [':method', 'GET']]);
  assert.equal(r.unknown, 1);
  // Literal with an unknown indexed name is inserted with an unknown name.
  const r2 = d.decode(Buffer.concat([hpackPrefixed(63, 6, 0x40), hpackString('v'), Buffer.from([0x80 | 62, 0x80 | 63])]));
  assert.deepEqual(pairs(r2.fields), [['x', '3']]);
  assert.equal(r2.unknown, 2);
  // A size update to 0 resynchronises: the table is empty on both ends.
  const r3 = d.decode(Buffer.concat([Buffer.from([0x20, 0x3f, 0xe1, 0x1f, 0x40]), hpackString('k'), hpackString('v'), Buffer.from([0x80 | 62])]));
  assert.equal(d.lostReason, null);
  assert.deepEqual(pairs(r3.fields), [['k', 'v'], ['k', 'v']]);
  assert.throws(() => d.decode(Buffer.from([0x80 | 63])), HpackError);
});

test('the dynamic table never exceeds the hard maximum and the list size cap drops fields', () => {
  const d = new HpackDecoder({ hardMaxTableSize: 1000, maxListSize: 300 });
  d.setAllowedTableSize(1_000_000);
  assert.throws(() => d.decode(Buffer.concat([Buffer.from([0x3f]), hpackInt(2000 - 31)])), HpackError);
  const d2 = new HpackDecoder({ hardMaxTableSize: 1000, maxListSize: 300 });
  d2.setAllowedTableSize(1_000_000);
  const parts: Buffer[] = [Buffer.concat([Buffer.from([0x3f]), hpackInt(1000 - 31)])];
  for (let i = 0; i < 50; i++) parts.push(Buffer.from([0x40]), hpackString(`name-${i}`), hpackString('v'.repeat(40)));
  const r = d2.decode(Buffer.concat(parts));
  assert.ok(d2.tableSize() <= 1000);
  assert.ok(r.listSize <= 300);
  assert.equal(r.fields.length / 2 + r.dropped, 50);
  assert.ok(r.dropped > 0);
});

test('non-ASCII octets: valid UTF-8 is decoded as UTF-8, anything else as latin1', () => {
  const d = new HpackDecoder();
  const r = d.decode(Buffer.concat([Buffer.from([0x00]), hpackString('x-utf8'), hpackString(Buffer.from('café ✓', 'utf8')),
    Buffer.from([0x00]), hpackString('x-bin'), hpackString(Buffer.from([0x41, 0xff, 0x42]))]));
  assert.deepEqual(pairs(r.fields), [['x-utf8', 'café ✓'], ['x-bin', 'A\u00ffB']]);
});
