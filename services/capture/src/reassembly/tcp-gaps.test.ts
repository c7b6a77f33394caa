/**
 * Holes that never fill: a segment the capture lost (a kernel drop on live
 * capture) must not wedge a keep-alive connection until a buffer limit or the
 * end. The peer's ACK of bytes never seen declares the gap at once; bytes
 * waiting behind a hole for gapTimeoutMs (no ACK seen) declare it too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { http1Dissector } from '../dissect/http1.ts';
import type { ConnectionInfo, Direction, ItemDraft, StreamDissector } from '../types.ts';
import { Reassembly, type ReassemblyOptions } from './index.ts';
import { PacketFeeder, TcpPair, nullSink, recorder, type Recorded, type Recorder } from './test-helpers.ts';

/**
 * One TCP connection with real ACKs: every packet acknowledges all the other
 * side has sent so far, lost segments included (the peer got them; only the
 * capture missed them).
 */
class Conversation {
  readonly pair: TcpPair;
  /** Bytes sent per direction (relative sequence numbers of the next byte). */
  readonly sent: [number, number] = [0, 0];

  constructor(pair: TcpPair) {
    this.pair = pair;
  }

  seq(dir: Direction, rel: number): number {
    return (this.pair.isn[dir] + 1 + rel) >>> 0;
  }

  /** The next segment of dir; `lost`: sent but never captured. */
  send(dir: Direction, data: string, ts: number, lost = false): void {
    const rel = this.sent[dir];
    this.sent[dir] += data.length;
    if (!lost) this.raw(dir, rel, data, ts);
  }

  /** A segment at any relative position (reordering, retransmission), acknowledging `ackRel` of the other side (default: all it sent). */
  raw(dir: Direction, rel: number, data: string, ts: number, ackRel = this.sent[1 - dir], flags = 'PA'): void {
    this.pair.raw(dir, this.seq(dir, rel), this.seq((1 - dir) as Direction, ackRel), flags, data, ts);
  }

  /** A bare ACK of everything the other side sent. */
  ack(dir: Direction, ts: number): void {
    this.raw(dir, this.sent[dir], '', ts, this.sent[1 - dir], 'A');
  }

  fin(dir: Direction, ts: number): void {
    this.raw(dir, this.sent[dir], '', ts, this.sent[1 - dir], 'FA');
  }
}

function setup(o: Partial<ReassemblyOptions> = {}, rec: Recorder = recorder('rec')) {
  const r = new Reassembly({ sink: nullSink, streamDissectors: [rec.dissector], ...o });
  const f = new PacketFeeder(r);
  const conv = (isnC = 1000, isnS = 5000, client = '10.0.0.1:40000', server = '10.0.0.2:80') => {
    const c = new Conversation(new TcpPair(f, client, server, isnC, isnS));
    c.pair.handshake(0);
    return c;
  };
  return { r, rec, conv };
}

/** The parser's view: data as "dir:text", gaps as "gap dir:length", closes by reason. */
function events(log: Recorded[]): string[] {
  return log.filter((e) => e.ev !== 'tick').map((e) => (e.ev === 'data' ? `${e.dir}:${e.text}` : e.ev === 'gap' ? `gap ${e.dir}:${e.length}` : e.ev === 'close' ? e.reason : ''));
}

const request = (i: number) => `GET /r${i} HTTP/1.1\r\nHost: a\r\n\r\n`;
const response = (i: number) => `HTTP/1.1 200 OK\r\nContent-Length: ${String(i).length}\r\n\r\n${i}`;

/**
 * `calls` request/response pairs on one connection, 10 ms apart, each followed
 * by the client's bare ACK, with ticks as a pipeline gives them; the `lost`
 * segments were sent but not captured.
 */
function keepAlive(r: Reassembly, c: Conversation, calls: number, lost: { req?: number[]; res?: number[] }, each?: () => void): void {
  for (let i = 0; i < calls; i++) {
    const t = 10 + i * 10;
    c.send(0, request(i), t, lost.req?.includes(i));
    c.send(1, response(i), t + 1, lost.res?.includes(i));
    c.ack(0, t + 2);
    r.tick(t + 2);
    each?.();
  }
}

/**
 * What the parser should see of keepAlive(): every call in order. The gap of
 * a lost request comes when the next request is held (after the response to
 * the lost one: nothing past the hole had been seen before); the gap of a
 * lost response when the next response is held.
 */
function expectedCalls(calls: number, lostReq: number, lostRes: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < calls; i++) {
    if (i !== lostReq) {
      if (lostReq >= 0 && i === lostReq + 1) out.push(`gap 0:${request(lostReq).length}`);
      out.push(`0:${request(i)}`);
    }
    if (i !== lostRes) {
      if (lostRes >= 0 && i === lostRes + 1) out.push(`gap 1:${response(lostRes).length}`);
      out.push(`1:${response(i)}`);
    }
  }
  return out;
}

describe('TCP gaps: the peer acknowledged bytes the capture never saw', () => {
  it('a lost request segment on a keep-alive connection: one gap at once, then every later call in order', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    keepAlive(r, c, 200, { req: [49] });
    // All of it before the end: nothing waits for a buffer limit or the close.
    assert.deepEqual(events(rec.log), expectedCalls(200, 49, -1));
    const s = r.stats();
    assert.equal(s.tcpGaps, 1);
    assert.equal(s.tcpGapBytes, request(49).length);
    assert.equal(s.tcpGapsByAck, 1);
    assert.equal(s.tcpGapsByTimeout, 0);
    assert.equal(s.tcpBufferEvictions, 0);
    assert.equal(s.tcpBufferedBytes, 0);
    r.end(5000);
    assert.equal(r.stats().tcpGaps, 1);
  });

  it('a lost response segment: one gap at once, then every later call in order', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    keepAlive(r, c, 200, { res: [49] });
    assert.deepEqual(events(rec.log), expectedCalls(200, -1, 49));
    const s = r.stats();
    assert.equal(s.tcpGaps, 1);
    assert.equal(s.tcpGapBytes, response(49).length);
    assert.equal(s.tcpGapsByAck, 1);
    assert.equal(s.tcpBufferedBytes, 0);
  });

  it('the gap comes before the bytes of the packet whose ACK revealed it', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    c.send(0, 'req1 ', 1);
    c.send(0, 'LOST ', 2, true);
    c.send(0, 'req3 ', 3); // held
    assert.equal(r.stats().tcpGaps, 0, 'no ACK beyond the hole yet');
    c.send(1, 'response', 4); // acknowledges all 15 client bytes
    assert.deepEqual(events(rec.log), ['0:req1 ', 'gap 0:5', '0:req3 ', '1:response']);
  });

  it('ordinary reordering is not a gap: a late segment that arrives before any ACK beyond it is delivered', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    c.send(0, 'aaaa', 1);
    // The client sends [4,8) and [8,12); the capture sees the second first.
    c.sent[0] = 12;
    c.raw(0, 8, 'cccc', 2);
    // The server's packets in between acknowledge only what it had (up to 4: a duplicate ACK).
    c.raw(1, 0, 'x', 3, 4);
    c.raw(1, 1, '', 4, 4, 'A');
    c.raw(0, 4, 'bbbb', 5);
    c.raw(1, 1, 'y', 6, 12);
    assert.deepEqual(events(rec.log), ['0:aaaa', '1:x', '0:bbbb', '0:cccc', '1:y']);
    assert.equal(r.stats().tcpGaps, 0);
    assert.equal(r.stats().tcpSegmentsOutOfOrder, 1);
  });

  it('an ACK ahead of every byte seen (capture reordering) waits: the bytes arriving after it are delivered', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    c.send(0, 'aaaa', 1);
    // The server's ACK of [4,12) is captured before the client's segments.
    c.raw(1, 0, 'x', 2, 12);
    c.raw(0, 4, 'bbbb', 3, 1);
    c.raw(0, 8, 'cccc', 4, 1);
    c.sent[0] = 12;
    c.raw(1, 1, 'y', 5);
    assert.deepEqual(events(rec.log), ['0:aaaa', '1:x', '0:bbbb', '0:cccc', '1:y']);
    assert.equal(r.stats().tcpGaps, 0);
  });

  it('an ACK field without the ACK flag, or before the direction has a base, is ignored', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    c.send(0, 'aaaa', 1);
    c.sent[0] = 12;
    c.raw(0, 8, 'cccc', 2); // hole [4,8)
    c.raw(1, 0, 'x', 3, 12, 'P'); // ack field set, flag not
    assert.equal(r.stats().tcpGaps, 0);
    c.raw(0, 4, 'bbbb', 4);
    assert.equal(rec.text(1, 0), 'aaaabbbbcccc');
    // Mid-stream: the server's ACKs before any client byte was seen refer to no base.
    const rec2 = recorder('rec');
    const m = setup({}, rec2);
    const p = new TcpPair(new PacketFeeder(m.r), '10.0.0.9:41000', '10.0.0.2:80', 7000, 9000);
    p.raw(1, 9000, 8000, 'PA', 'reply', 1);
    p.raw(0, 7100, 9005, 'PA', 'next', 2);
    assert.equal(rec2.text(1, 0), 'next');
    assert.equal(m.r.stats().tcpGaps, 0);
  });

  it('an ACK covering only part of the hole declares that part; the rest waits for its retransmission', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    c.send(0, 'aaaa', 1);
    c.sent[0] = 16;
    c.raw(0, 12, 'dddd', 2); // hole [4,12)
    c.raw(1, 0, 'x', 3, 8); // the server got [4,8): the capture lost it; [8,12) is still on its way
    assert.deepEqual(events(rec.log), ['0:aaaa', 'gap 0:4', '1:x']);
    c.raw(0, 8, 'cccc', 4); // the retransmission
    assert.deepEqual(events(rec.log), ['0:aaaa', 'gap 0:4', '1:x', '0:cccc', '0:dddd']);
    assert.equal(r.stats().tcpGapsByAck, 1);
    assert.equal(r.stats().tcpBufferedBytes, 0);
  });

  it('one ACK over several holes declares each, with the held bytes between them in order', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    c.send(0, 'a', 1);
    c.send(0, 'B', 2, true);
    c.send(0, 'c', 3);
    c.send(0, 'DD', 4, true);
    c.send(0, 'e', 5);
    c.send(0, 'FFF', 6, true);
    c.send(0, 'g', 7);
    c.raw(1, 0, 'ok', 8, 6); // up to and including 'e': the third hole may still come
    assert.deepEqual(events(rec.log), ['0:a', 'gap 0:1', '0:c', 'gap 0:2', '0:e', '1:ok']);
    c.ack(1, 9);
    assert.deepEqual(events(rec.log).slice(6), ['gap 0:3', '0:g']);
    assert.equal(r.stats().tcpGapsByAck, 3);
  });

  it('an ACK before the segment after the hole is remembered: the gap comes when that segment is held', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    c.send(0, 'req1 ', 1);
    c.send(0, 'LOST ', 2, true);
    c.send(1, 'resp', 3); // acknowledges the lost bytes; nothing after them seen yet: wait
    assert.equal(r.stats().tcpGaps, 0);
    c.ack(0, 4);
    c.send(0, 'req3 ', 5);
    assert.deepEqual(events(rec.log), ['0:req1 ', '1:resp', 'gap 0:5', '0:req3 ']);
    assert.equal(r.stats().tcpGapsByAck, 1);
  });

  it('crosses the 2^32 wrap: the hole, the ACK and the held bytes on both sides of it', () => {
    const { r, rec, conv } = setup({}, recorder('rec'));
    const c = conv(0xffff_fff0, 0xffff_fffa);
    c.send(0, 'abcdefghij', 1); // client seq 0xfffffff1..0xfffffffa
    c.send(0, 'LOST-across-wrap', 2, true); // 0xfffffffb..0x0000000a
    c.send(0, 'after', 3);
    c.send(1, 'server-bytes-over-the-wrap', 4); // its ACK (0x10) is past the wrap, its own bytes cross it too
    c.send(1, 'lost-too', 5, true);
    c.send(0, 'more', 6); // acknowledges the lost server bytes: remembered, nothing after them seen yet
    c.send(1, 'end', 7);
    assert.deepEqual(events(rec.log), [
      '0:abcdefghij', 'gap 0:16', '0:after', '1:server-bytes-over-the-wrap', '0:more', 'gap 1:8', '1:end',
    ]);
    assert.equal(r.stats().tcpGapsByAck, 2);
    assert.equal(r.stats().tcpGapBytes, 24);
  });

  it('a FIN past the hole bounds it: the ACK declares the gap and the connection closes with fin at once', () => {
    const { r, rec, conv } = setup({ finLingerMs: 60_000 });
    const c = conv();
    c.send(0, 'req1 ', 1);
    c.send(1, 'resp1', 2);
    c.send(0, 'last request', 3, true);
    c.fin(0, 4);
    c.fin(1, 5); // acknowledges the lost request and the FIN
    assert.deepEqual(events(rec.log), ['0:req1 ', '1:resp1', 'gap 0:12', 'fin']);
    assert.equal(r.activeFlows, 0);
    assert.equal(r.stats().tcpClosedFin, 1);
  });

  it('a parser that throws on the ACK-declared gap breaks only its stream; the packet\'s bytes count as broken', () => {
    const d: StreamDissector = {
      name: 'x',
      probe: () => 'yes',
      create: () => ({ onData: () => {}, onGap: () => { throw new Error('gap bug'); }, onTick: () => {}, onClose: () => {} }),
    };
    const r = new Reassembly({ sink: nullSink, streamDissectors: [d] });
    const c = new Conversation(new TcpPair(new PacketFeeder(r), '10.0.0.1:40000', '10.0.0.2:80'));
    c.pair.handshake(0);
    c.send(0, 'req1 ', 1);
    c.send(0, 'LOST ', 2, true);
    c.send(0, 'req3 ', 3);
    c.send(1, 'response', 4);
    const s = r.stats();
    assert.equal(s.parserErrors, 1);
    assert.equal(s.tcpBrokenStreams, 1);
    assert.equal(s.tcpBrokenBytes, 8); // the response's (the held 'req3 ' is released with the parser, as on any break)
    assert.equal(s.tcpBufferedBytes, 0);
    c.fin(0, 5);
    c.fin(1, 6);
    assert.equal(r.activeFlows, 0);
  });

  it('an ACK gap while the dissector is still being chosen is replayed in place', () => {
    let calls = 0;
    const rec = recorder('late', { probe: () => (++calls >= 3 ? 'yes' : 'more') });
    const { r, conv } = setup({}, rec);
    const c = conv();
    c.send(0, 'one ', 1);
    c.send(0, 'two ', 2, true);
    c.send(0, 'three ', 3);
    c.send(1, 'ack', 4);
    assert.deepEqual(events(rec.log), ['0:one ', 'gap 0:4', '0:three ', '1:ack']);
    assert.equal(r.stats().tcpGapsByAck, 1);
  });
});

describe('TCP gaps: held bytes that waited gapTimeoutMs', () => {
  it('a one-way stream (no ACK ever seen) declares the hole after gapTimeoutMs on tick, then delivers', () => {
    const { r, rec, conv } = setup({ gapTimeoutMs: 500, tickIntervalMs: 1 });
    const c = conv();
    // Only the client's packets are captured; their ACK field never moves (the server sends nothing).
    c.send(0, 'aaaa', 100);
    c.send(0, 'LOST', 110, true);
    c.send(0, 'cccc', 120);
    c.send(0, 'dddd', 130);
    r.tick(300);
    r.tick(619);
    assert.deepEqual(events(rec.log), ['0:aaaa']);
    r.tick(620);
    assert.deepEqual(events(rec.log), ['0:aaaa', 'gap 0:4', '0:cccc', '0:dddd']);
    assert.deepEqual(only(rec.log, 'gap').map((e) => e.ts), [620]);
    const s = r.stats();
    assert.equal(s.tcpGapsByTimeout, 1);
    assert.equal(s.tcpGapsByAck, 0);
    assert.equal(s.tcpBufferedBytes, 0);
    c.send(0, 'eeee', 700);
    assert.equal(rec.text(1, 0), 'aaaaccccddddeeee');
  });

  it('a segment held after the timeout passed declares the gap without waiting for a tick', () => {
    const { r, rec, conv } = setup({ gapTimeoutMs: 500, tickIntervalMs: 60_000 });
    const c = conv();
    c.send(0, 'aaaa', 100);
    c.send(0, 'LOST', 110, true);
    c.send(0, 'cccc', 120);
    c.send(0, 'dddd', 619);
    assert.equal(r.stats().tcpGaps, 0);
    c.send(0, 'eeee', 620);
    assert.deepEqual(events(rec.log), ['0:aaaa', 'gap 0:4', '0:cccc', '0:dddd', '0:eeee']);
    assert.equal(r.stats().tcpGapsByTimeout, 1);
  });

  it('each hole gets its own wait, counted from when the bytes behind it arrived', () => {
    const { r, rec, conv } = setup({ gapTimeoutMs: 500, tickIntervalMs: 1 });
    const c = conv();
    c.send(0, 'a', 0);
    c.send(0, 'B', 0, true);
    c.send(0, 'c', 100);
    c.send(0, 'D', 0, true);
    c.send(0, 'e', 400);
    r.tick(599);
    assert.equal(r.stats().tcpGaps, 0);
    r.tick(600); // 'c' waited 500 ms; 'e' only 200 ms behind the second hole
    assert.deepEqual(events(rec.log), ['0:a', 'gap 0:1', '0:c']);
    r.tick(899);
    assert.equal(r.stats().tcpGaps, 1);
    r.tick(900);
    assert.deepEqual(events(rec.log), ['0:a', 'gap 0:1', '0:c', 'gap 0:1', '0:e']);
    assert.equal(r.stats().tcpGapsByTimeout, 2);
  });

  it('a late segment within gapTimeoutMs fills the hole: no gap', () => {
    const { r, rec, conv } = setup({ gapTimeoutMs: 500, tickIntervalMs: 1 });
    const c = conv();
    c.send(0, 'aaaa', 100);
    c.sent[0] = 12;
    c.raw(0, 8, 'cccc', 110, 0);
    r.tick(400);
    c.raw(0, 4, 'bbbb', 450, 0);
    r.tick(2000);
    assert.equal(rec.text(1, 0), 'aaaabbbbcccc');
    assert.equal(r.stats().tcpGaps, 0);
  });

  it('gapTimeoutMs Infinity turns the time fallback off', () => {
    const { r, conv } = setup({ gapTimeoutMs: Infinity, tickIntervalMs: 1 });
    const c = conv();
    c.send(0, 'aaaa', 100);
    c.send(0, 'LOST', 110, true);
    c.send(0, 'cccc', 120);
    r.tick(100_000);
    c.send(0, 'dddd', 100_000);
    assert.equal(r.stats().tcpGaps, 0);
    assert.equal(r.stats().tcpBufferedBytes, 8);
  });

  it('both FINs past a timed-out hole: the connection closes with fin once the gap is declared', () => {
    const { r, rec, conv } = setup({ gapTimeoutMs: 500, finLingerMs: 60_000, tickIntervalMs: 1 });
    const c = conv();
    c.send(0, 'aaaa', 100);
    c.send(0, 'LOST', 110, true);
    c.send(0, 'cccc', 120);
    // The server's FIN acknowledges nothing of the client's (a one-way capture of its ACKs would look alike).
    c.raw(1, 0, '', 130, 0, 'FA');
    c.raw(0, 12, '', 140, 0, 'FA');
    r.tick(620);
    assert.deepEqual(events(rec.log), ['0:aaaa', 'gap 0:4', '0:cccc', 'fin']);
    assert.equal(r.activeFlows, 0);
  });
});

describe('TCP gaps: memory', () => {
  it('lost segments on a long keep-alive connection never pile up held bytes', () => {
    const { r, rec, conv } = setup();
    const c = conv();
    const lostReq: number[] = [];
    const lostRes: number[] = [];
    for (let i = 5; i < 3000; i += 7) (i % 2 === 0 ? lostReq : lostRes).push(i);
    let maxHeld = 0;
    keepAlive(r, c, 3000, { req: lostReq, res: lostRes }, () => { maxHeld = Math.max(maxHeld, r.stats().tcpBufferedBytes); });
    const s = r.stats();
    // At most one request or response waits at a time, and only until the next ACK.
    assert.ok(maxHeld <= Math.max(request(2999).length, response(2999).length), `held ${maxHeld}`);
    assert.equal(s.tcpGaps, lostReq.length + lostRes.length);
    assert.equal(s.tcpGapsByAck, s.tcpGaps);
    const bytes = (f: (i: number) => string, lost: number[]) => lost.reduce((a, i) => a + f(i).length, 0);
    assert.equal(s.tcpGapBytes, bytes(request, lostReq) + bytes(response, lostRes));
    assert.equal(only(rec.log, 'data').length, 6000 - lostReq.length - lostRes.length);
    assert.equal(s.tcpBufferedBytes, 0);
  });

  it('a one-way stream with a lost segment every 100 holds at most gapTimeoutMs worth of bytes', () => {
    const { r, conv } = setup({ gapTimeoutMs: 50, tickIntervalMs: 10 });
    const c = conv();
    const chunk = 'x'.repeat(1000);
    let maxHeld = 0;
    for (let i = 0; i < 5000; i++) {
      c.send(0, chunk, i, i % 100 === 1); // 1 ms apart: a hole holds about 50 segments before it times out
      r.tick(i);
      maxHeld = Math.max(maxHeld, r.stats().tcpBufferedBytes);
    }
    assert.ok(maxHeld <= 51 * 1000, `held ${maxHeld}`);
    const s = r.stats();
    assert.equal(s.tcpGapsByTimeout, 50);
    assert.equal(s.tcpBufferEvictions, 0);
  });
});

describe('TCP gaps with the HTTP/1 dissector', () => {
  function http(o: Partial<ReassemblyOptions> = {}) {
    const items: ItemDraft[] = [];
    const r = new Reassembly({ sink: { emit: (_c: ConnectionInfo, i: ItemDraft) => { items.push(i); } }, streamDissectors: [http1Dissector], ...o });
    const c = new Conversation(new TcpPair(new PacketFeeder(r), '10.0.0.1:40000', '10.0.0.2:80'));
    c.pair.handshake(0);
    return { r, c, items };
  }
  const path = (i: ItemDraft) => (i.request as { path?: string } | null)?.path;
  const status = (i: ItemDraft) => (i.response as { status?: number } | null)?.status;

  /** 200 POSTs on one connection, head and body in separate segments; `lose` picks segments the capture misses. */
  function posts(r: Reassembly, c: Conversation, lose: (call: number, part: 'reqHead' | 'reqBody' | 'resHead' | 'resBody') => boolean): void {
    for (let i = 0; i < 200; i++) {
      const t = 10 + i * 10;
      const body = `{"n":${i}}`;
      c.send(0, `POST /c${i} HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`, t, lose(i, 'reqHead'));
      c.send(0, body, t + 1, lose(i, 'reqBody'));
      const rb = `{"ok":${i}}`;
      c.send(1, `HTTP/1.1 200 OK\r\nContent-Length: ${rb.length}\r\n\r\n`, t + 2, lose(i, 'resHead'));
      c.send(1, rb, t + 3, lose(i, 'resBody'));
      c.ack(0, t + 4);
      r.tick(t + 4);
    }
  }

  function check(items: ItemDraft[], broken: number, error: RegExp): void {
    assert.equal(items.length, 200);
    const bad = items.filter((i) => i.error !== undefined);
    assert.equal(bad.length, 1, JSON.stringify(bad.map((i) => i.error)));
    assert.match(bad[0].error as string, error);
    assert.equal(path(bad[0]), `/c${broken}`);
    // Every other call is a complete pair, in order.
    items.forEach((it, i) => {
      assert.equal(path(it), `/c${i}`);
      assert.equal(status(it), 200);
    });
  }

  it('a lost request body segment: one item with the gap error, every later call complete', () => {
    const { r, c, items } = http();
    posts(r, c, (i, part) => i === 49 && part === 'reqBody');
    check(items, 49, /^capture gap: 8 bytes lost$/);
    assert.equal(r.stats().tcpGapsByAck, 1);
    assert.equal(r.stats().tcpGaps, 1);
  });

  it('a lost response body segment: one item with the gap error, every later call complete', () => {
    const { r, c, items } = http();
    posts(r, c, (i, part) => i === 49 && part === 'resBody');
    check(items, 49, /^capture gap: 9 bytes lost$/);
    assert.equal(r.stats().tcpGapsByAck, 1);
  });

  it('a whole request lost: its response is the one item with an error, every later call complete', () => {
    const { r, c, items } = http();
    for (let i = 0; i < 200; i++) {
      const t = 10 + i * 10;
      c.send(0, request(i), t, i === 49);
      c.send(1, response(i), t + 1);
      c.ack(0, t + 2);
      r.tick(t + 2);
    }
    assert.equal(items.length, 200);
    const bad = items.filter((i) => i.error !== undefined);
    assert.equal(bad.length, 1);
    assert.equal(bad[0].request, null);
    assert.match(bad[0].error as string, /request lost/);
    assert.equal(items.indexOf(bad[0]), 49);
    items.forEach((it, i) => {
      if (i !== 49) assert.equal(path(it), `/r${i}`);
    });
    assert.equal(r.stats().tcpGapBytes, request(49).length);
  });
});

function only<E extends Recorded['ev']>(log: Recorded[], ev: E): Extract<Recorded, { ev: E }>[] {
  return log.filter((e): e is Extract<Recorded, { ev: E }> => e.ev === ev);
}
