/**
 * Micro-benchmark of the HTTP/2 dissector for `npm run bench` (never a timed
 * test): N request/response pairs are recorded once from a real node:http2
 * client and server over one connection (through the recording proxy), then
 * the recorded bytes are parsed several times; the figure is streams/s of
 * parsing alone (HPACK, framing, body keeping and item building included).
 */
import type { RecordedChunk } from '@wirescript/testing';
import { DEFAULT_DISSECTOR_OPTIONS, type DissectorContext } from '../types.ts';
import { http2Dissector } from './http2.ts';
import { TEST_CONN, readAll, recordHttp2, request } from './http2-testing.ts';

export interface Http2BenchResult {
  streams: number;
  /** Request/response pairs parsed per second. */
  streamsPerSec: number;
  /** Recorded bytes (both directions) parsed per second, MB (10^6). */
  mbPerSec: number;
}

function grpcFrame(payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** Records `streams` calls: REST-style JSON calls, or gRPC-shaped unary calls. */
async function record(streams: number, kind: 'http' | 'grpc'): Promise<RecordedChunk[]> {
  const body = Buffer.from(JSON.stringify({ items: Array.from({ length: 8 }, (_, i) => ({ id: i, name: `item-${i}`, price: i * 3.5 })) }));
  const session = await recordHttp2({
    onStream: (stream, headers) => {
      stream.on('error', () => undefined);
      void readAll(stream).then(() => {
        if (kind === 'grpc') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(grpcFrame(body));
        } else {
          stream.respond({ ':status': 200, 'content-type': 'application/json', 'cache-control': 'no-store', 'x-request-id': String(headers['x-request-id']) });
          stream.end(body);
        }
      });
    },
    run: async (client) => {
      for (let done = 0; done < streams;) {
        const batch: Promise<unknown>[] = [];
        for (let k = 0; k < 100 && done < streams; k++, done++) {
          batch.push(kind === 'grpc'
            ? request(client, { ':method': 'POST', ':path': '/shop.v1.Catalog/GetItem', 'content-type': 'application/grpc', te: 'trailers', 'x-request-id': `r-${done}` }, grpcFrame(Buffer.from(`item-${done}`)))
            : request(client, { ':path': `/api/v1/items/${done}?page=${done % 10}`, accept: 'application/json', 'user-agent': 'bench/1.0', authorization: 'Bearer abc.def.ghi', 'x-request-id': `r-${done}` }));
        }
        await Promise.all(batch);
      }
    },
  });
  return session.chunks;
}

export async function runHttp2Bench(streams = 20_000, rounds = 5, kind: 'http' | 'grpc' = 'http'): Promise<Http2BenchResult> {
  const chunks = await record(streams, kind);
  const bytes = chunks.reduce((a, c) => a + c.data.length, 0);
  let emitted = 0;
  const ctx: DissectorContext = { conn: TEST_CONN, opts: DEFAULT_DISSECTOR_OPTIONS, switchTo: () => null, sink: { emit: () => void emitted++ } };
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const parser = http2Dissector.create(ctx);
    const t0 = performance.now();
    for (const c of chunks) parser.onData(c.dir, c.data, c.tsMs);
    parser.onClose(chunks.at(-1)?.tsMs ?? 0, 'fin');
    best = Math.min(best, performance.now() - t0);
  }
  if (emitted !== streams * rounds) throw new Error(`http2 bench: ${emitted} items for ${streams * rounds} streams`);
  const secs = best / 1000;
  const result = { streams, streamsPerSec: Math.round(streams / secs), mbPerSec: Math.round((bytes / 1e6 / secs) * 10) / 10 };
  console.log(`http2 dissector (${kind}): ${streams.toLocaleString('en-US')} streams over one connection, ${(bytes / 1e6).toFixed(1)} MB -> ${result.streamsPerSec.toLocaleString('en-US')} streams/s, ${result.mbPerSec} MB/s (best of ${rounds})`);
  return result;
}

if (import.meta.main) {
  await runHttp2Bench(Number(process.env.BENCH_HTTP2_STREAMS ?? 20_000), 5, 'http');
  await runHttp2Bench(Number(process.env.BENCH_HTTP2_STREAMS ?? 20_000), 5, 'grpc');
}
