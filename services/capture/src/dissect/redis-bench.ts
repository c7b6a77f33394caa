/**
 * Micro-benchmarks of the Redis dissector for `npm run bench` (never timed
 * tests): a realistic command mix (SET/GET with 100-byte values, INCR,
 * HGETALL, MGET, LRANGE, EXPIRE, PING, RESP2 replies) through one parser,
 * (a) one message per onData call, request then reply, as a reassembler
 * hands packets of a request/response client, and (b) pipelined: 100
 * commands per onData call, then their 100 replies.
 */
import type { ConnectionInfo, DissectorOptions } from '../types.ts';
import { DEFAULT_DISSECTOR_OPTIONS } from '../types.ts';
import { redisDissector } from './redis.ts';
import { encodeCommand } from './redis-testkit.ts';

const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/** `count` command/reply pairs. */
export function makeRedisPairs(count: number): Array<{ command: Buffer; reply: Buffer }> {
  const out: Array<{ command: Buffer; reply: Buffer }> = [];
  for (let i = 0; i < count; i++) {
    const key = `session:${(i * 7919) % 100_000}`;
    const value = JSON.stringify({ user: i, roles: ['reader', 'writer'], exp: 1_700_000_000 + i }).padEnd(100, ' ');
    let cmd: string[];
    let reply: string;
    switch (i % 8) {
      case 0: cmd = ['SET', key, value, 'EX', '3600']; reply = '+OK\r\n'; break;
      case 1: cmd = ['GET', key]; reply = bulk(value); break;
      case 2: cmd = ['INCR', `counter:${i % 100}`]; reply = `:${i}\r\n`; break;
      case 3: cmd = ['HGETALL', `user:${i % 1000}`]; reply = '*10\r\n' + Array.from({ length: 10 }, (_, j) => bulk(j % 2 ? `value-${i}-${j}` : `field${j}`)).join(''); break;
      case 4: cmd = ['MGET', 'a', 'b', 'c', 'd', 'e']; reply = '*5\r\n' + ['1', '2', '3', '4'].map(bulk).join('') + '$-1\r\n'; break;
      case 5: cmd = ['LRANGE', `queue:${i % 10}`, '0', '9']; reply = '*10\r\n' + Array.from({ length: 10 }, (_, j) => bulk(`job-${i}-${j}`)).join(''); break;
      case 6: cmd = ['EXPIRE', key, '60']; reply = ':1\r\n'; break;
      default: cmd = ['PING']; reply = '+PONG\r\n';
    }
    out.push({ command: encodeCommand(cmd), reply: Buffer.from(reply) });
  }
  return out;
}

const CONN: ConnectionInfo = { id: 0, client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.3', port: 6379 }, ipVersion: 4, transport: 'tcp', handshakeSeen: true };

/** Commands/s (each paired with its reply, item built and emitted): one message per onData call. */
export function benchRedis(n = 300_000, opts: DissectorOptions = DEFAULT_DISSECTOR_OPTIONS): { commandsPerSec: number; items: number } {
  const pairs = makeRedisPairs(1000);
  let items = 0;
  let errors = 0;
  const sink = { emit: (_c: ConnectionInfo, it: { error?: string }) => { items++; if (it.error) errors++; } };
  const parser = redisDissector.create({ conn: CONN, sink, opts, switchTo: () => null });
  for (let i = 0; i < 20_000; i++) {
    parser.onData(0, pairs[i % pairs.length].command, i);
    parser.onData(1, pairs[i % pairs.length].reply, i);
  }
  items = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    parser.onData(0, pairs[i % pairs.length].command, 1e6 + i);
    parser.onData(1, pairs[i % pairs.length].reply, 1e6 + i);
  }
  const ms = performance.now() - t0;
  parser.onClose(2e6, 'fin');
  if (items !== n || errors) throw new Error(`bench: expected ${n} clean items, got ${items} (${errors} with errors)`);
  return { commandsPerSec: Math.round((n / ms) * 1000), items };
}

/** Commands/s pipelined: 100 commands per onData call, then their replies in one call. */
export function benchRedisPipelined(n = 300_000, opts: DissectorOptions = DEFAULT_DISSECTOR_OPTIONS): { commandsPerSec: number; items: number } {
  const pairs = makeRedisPairs(1000);
  const batches: Array<{ commands: Buffer; replies: Buffer }> = [];
  for (let b = 0; b < 10; b++) {
    const slice = pairs.slice(b * 100, b * 100 + 100);
    batches.push({ commands: Buffer.concat(slice.map((p) => p.command)), replies: Buffer.concat(slice.map((p) => p.reply)) });
  }
  let items = 0;
  const sink = { emit: () => { items++; } };
  const parser = redisDissector.create({ conn: CONN, sink, opts, switchTo: () => null });
  for (let i = 0; i < 200; i++) {
    parser.onData(0, batches[i % 10].commands, i);
    parser.onData(1, batches[i % 10].replies, i);
  }
  items = 0;
  const rounds = Math.ceil(n / 100);
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    parser.onData(0, batches[i % 10].commands, 1e6 + i);
    parser.onData(1, batches[i % 10].replies, 1e6 + i);
  }
  const ms = performance.now() - t0;
  parser.onClose(2e6, 'fin');
  if (items !== rounds * 100) throw new Error(`bench: expected ${rounds * 100} items, got ${items}`);
  return { commandsPerSec: Math.round(((rounds * 100) / ms) * 1000), items };
}

/** Runs the Redis benchmarks and prints them (for bench/run.ts). */
export function runRedisBench(n = 300_000): Record<string, number> {
  const single = benchRedis(n);
  const piped = benchRedisPipelined(n);
  const fmt = (v: number) => v.toLocaleString('en-US').padStart(12);
  console.log(`\nredis: ${n.toLocaleString('en-US')} commands per case (SET/GET 100-byte values, INCR, HGETALL, MGET, LRANGE, EXPIRE, PING); node ${process.version}`);
  console.log(`  ${'case'.padEnd(44)} commands/s per core`);
  console.log(`  ${'one message per onData (parse, pair, items)'.padEnd(44)} ${fmt(single.commandsPerSec)}`);
  console.log(`  ${'pipelined, 100 commands per onData'.padEnd(44)} ${fmt(piped.commandsPerSec)}`);
  return { redisCommandsPerSec: single.commandsPerSec, redisPipelinedCommandsPerSec: piped.commandsPerSec };
}
