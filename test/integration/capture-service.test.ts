/**
 * The capture service over a real nats-server, replaying a pcap that tcpdump
 * wrote from real loopback traffic (HTTP/1.1, HTTP/2, DNS, Redis): items and
 * packet batches on their subjects in the published shape, status counters,
 * the real process, NATS going away mid-replay, and the per-stream pcap ring.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CapturePipeline, CaptureService, loadCaptureConfig, readCaptureFile } from '@wirescript/capture';
import { connectNats, drainAndClose, ensureStream, type NatsConnection } from '@wirescript/nats';
import { Item, PacketBatch, ReplicaStatus, decodeMessage, itemsSubject, packetsSubject, statusSubject } from '@wirescript/proto';
import { frameInConversation, freePort, readPcap, startNatsServer, type NatsServer } from '@wirescript/testing';
import { callOf, countCalls, recordTraffic, waitFor, type RecordedTraffic } from './helpers.ts';

const BIN = new URL('../../bin/wirescript.ts', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'wirescript-capsvc-'));

function captureEnv(url: string, node: string, replica: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NATS_URL: url, NODE_NAME: node, REPLICA_ID: replica, LOG_LEVEL: 'warn', HEALTH_PORT: '0', STATUS_INTERVAL: '100ms',
    PACKET_BATCH_SIZE: '16', PACKET_BATCH_INTERVAL: '50ms', ...extra,
  };
}

interface Received<T> {
  subject: string;
  msg: T;
}

function collect<T>(nc: NatsConnection, subject: string, decode: (b: Uint8Array) => T): Received<T>[] {
  const out: Received<T>[] = [];
  nc.subscribe(subject, { callback: (err, m) => { if (!err) out.push({ subject: m.subject, msg: decode(m.data) }); } });
  return out;
}

async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('capture service', () => {
  let traffic: RecordedTraffic;
  let frames: ReturnType<typeof readPcap>['records'];
  let server: NatsServer;
  let nc: NatsConnection;

  before(async () => {
    traffic = await recordTraffic(path.join(dir, 'all.pcap'), { http1: 30, http2: 12, dns: 6, redis: 10 });
    frames = readPcap(traffic.file).records;
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({ url: server.url, name: 'test', log: () => {} });
  });
  after(async () => {
    await drainAndClose(nc);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('CAPTURE_PCAP replay: items in the Kubeshark shape on ws.items.<node>.<protocol>, packet batches in sequence, status counters', async () => {
    const node = 'node-replay';
    const items = collect(nc, `ws.items.${node}.>`, (b) => decodeMessage(Item, b));
    const batches = collect(nc, packetsSubject(node), (b) => decodeMessage(PacketBatch, b));
    const statuses = collect(nc, statusSubject('capture', 'cap-replay'), (b) => decodeMessage(ReplicaStatus, b));
    await nc.flush();
    const capture = new CaptureService(loadCaptureConfig(captureEnv(server.url, node, 'cap-replay', { CAPTURE_PCAP: traffic.file })));
    await capture.start();
    try {
      await within('replay', capture.replayDone, 10_000);
      assert.equal(capture.replayError, null);
      const n = traffic.calls.length;
      await waitFor(`${n} items`, () => items.length >= n, 10_000);
      await waitFor('every packet summary', () => batches.reduce((k, b) => k + b.msg.packets.length, 0) >= frames.length, 10_000);
      await waitFor('a status with everything published', () => statuses.at(-1)?.msg.counters.items_published === n, 10_000);

      // Items: envelope, subject, and the item JSON inside.
      const objs = items.map(({ subject, msg }) => {
        const it = JSON.parse(msg.json.toString('utf8')) as Record<string, any>;
        assert.equal(subject, itemsSubject(node, it.protocol.name));
        assert.equal(msg.id, it.id);
        assert.equal(msg.node, node);
        assert.equal(msg.protocol, it.protocol.name);
        assert.equal(msg.timestampMs, it.timestamp);
        return it;
      });
      assert.deepEqual(countCalls(objs.map(callOf)), countCalls(traffic.calls), 'the calls the clients made, each once');
      const first = frames[0].sec * 1000 + frames[0].frac / 1000;
      const last = frames.at(-1)!.sec * 1000 + frames.at(-1)!.frac / 1000;
      const serverPort: Record<string, number> = { http1: traffic.http1Port, http2: traffic.http2Port, dns: traffic.dnsPort, redis: 6379 };
      for (const it of objs) {
        const what = JSON.stringify(it).slice(0, 300);
        assert.equal(typeof it.id, 'string', what);
        assert.ok(Number.isInteger(it.index) && it.index >= 0, what);
        assert.match(it.stream, /^[0-9a-f]{6,}$/, what);
        assert.equal(it.worker, 'cap-replay');
        assert.equal(it.node.name, node);
        assert.equal(typeof it.node.ip, 'string');
        const udp = it.protocol.name === 'dns';
        assert.deepEqual(Object.keys(it.protocol).sort(), ['abbr', 'layer3', 'layer4', 'longName', 'macro', 'name', 'version']);
        assert.equal(it.protocol.layer3, 'IP');
        assert.equal(it.protocol.layer4, udp ? 'UDP' : 'TCP');
        for (const side of [it.src, it.dst]) {
          assert.equal(side.ip, '127.0.0.1');
          assert.equal(typeof side.port, 'string');
          assert.match(side.port, /^[1-9]\d*$/);
          assert.equal(typeof side.name, 'string');
          assert.equal(typeof side.namespace, 'string');
        }
        assert.equal(it.dst.port, String(serverPort[callOf(it).protocol]), what);
        assert.ok(it.timestamp >= Math.floor(first) && it.timestamp <= Math.ceil(last), what);
        assert.match(it.startTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.ok(Math.abs(Date.parse(it.startTime) - it.timestamp) <= 1, what);
        assert.ok(it.request && typeof it.request === 'object', what);
        assert.ok(it.response && typeof it.response === 'object', what);
        assert.ok(typeof it.elapsedTime === 'number' && it.elapsedTime >= 0 && it.elapsedTime < 10_000, what);
        assert.ok(it.requestSize > 0 && it.responseSize > 0, what);
        assert.equal(it.error, null, what);
        assert.equal(it.passed, false);
        assert.equal(it.failed, false);
      }
      assert.deepEqual(objs.map((it) => it.index).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
      assert.equal(new Set(objs.map((it) => it.id)).size, n);
      const h1 = objs.find((it) => it.protocol.version === '1.1' && it.request.method === 'POST')!;
      assert.equal(h1.protocol.abbr, 'HTTP');
      assert.match(h1.request.postData.text, /^payload-\d+/);
      const gz = objs.find((it) => it.protocol.version === '1.1' && it.request.path.startsWith('/gzip') && it.response.status === 200)!;
      assert.equal(JSON.parse(gz.response.content.text).path, gz.request.path, 'gzip body decoded');
      const chunked = objs.find((it) => it.protocol.version === '1.1' && it.request.path.startsWith('/chunked') && it.response.status === 200)!;
      assert.equal(JSON.parse(chunked.response.content.text).path, chunked.request.path, 'chunked body joined');
      assert.equal(objs.find((it) => it.protocol.version === '2.0')!.protocol.abbr, 'HTTP/2');

      // Packet batches: one sequence, in order, every frame once, with its time and sizes.
      assert.deepEqual(batches.map((b) => b.msg.sequence), Array.from({ length: batches.length }, (_, i) => i + 1));
      assert.ok(batches.length >= Math.ceil(frames.length / 16));
      const packets = batches.flatMap((b) => b.msg.packets);
      assert.equal(packets.length, frames.length);
      assert.ok(batches.every((b) => b.subject === packetsSubject(node) && b.msg.node === node && b.msg.droppedSinceLast === 0));
      packets.forEach((p, i) => {
        assert.equal(p.captureLength, frames[i].data.length);
        assert.equal(p.length, frames[i].origLen);
        assert.equal(p.timestampMs, Math.round(frames[i].sec * 1000 + frames[i].frac / 1000));
        assert.equal(p.truncated, false);
      });

      const st = statuses.at(-1)!.msg;
      assert.equal(st.service, 'capture');
      assert.equal(st.replica, 'cap-replay');
      assert.equal(st.node, node);
      assert.equal(st.counters.packets_received, frames.length);
      assert.equal(st.counters.items_produced, n);
      assert.equal(st.counters.items_dropped, 0);
      assert.equal(st.counters.items_queued, 0);
      assert.equal(st.counters.packets_dropped, 0);
      assert.equal(st.counters.packets_published, frames.length);
      assert.equal(st.counters.packet_batches, batches.length);
      assert.equal(st.counters.reassembly_parserErrors, 0);
    } finally {
      await capture.stop();
    }
  });

  test('the real process replays, publishes everything, exits 0; a bad REPLAY_SPEED or NATS_URL exits 2 naming it; a missing file exits 1', async () => {
    const node = 'node-proc';
    const items = collect(nc, `ws.items.${node}.>`, (b) => decodeMessage(Item, b));
    await nc.flush();
    const run = (args: string[], env: Record<string, string>) => {
      const child = spawn(process.execPath, [BIN, 'capture', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      return new Promise<{ code: number | null; stderr: string }>((r) => child.on('exit', (code) => { clearTimeout(killer); r({ code, stderr }); }));
    };
    const env = captureEnv(server.url, node, 'cap-proc', { LOG_LEVEL: 'info' });
    const ok = await run(['--pcap', traffic.file], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /replay finished, draining/);
    await waitFor('every item of the process', () => items.length >= traffic.calls.length, 5_000);
    assert.deepEqual(countCalls(items.map((m) => callOf(JSON.parse(m.msg.json.toString('utf8'))))), countCalls(traffic.calls));

    const badSpeed = await run(['--pcap', traffic.file], { ...env, REPLAY_SPEED: 'warp' });
    assert.equal(badSpeed.code, 2);
    assert.match(badSpeed.stderr, /^capture: invalid configuration: REPLAY_SPEED: .*"warp"/);
    assert.equal(badSpeed.stderr.trim().split('\n').length, 1, badSpeed.stderr);
    const badFlag = await run(['--pcap', traffic.file, '--speed', '0'], env);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /REPLAY_SPEED/);
    const badUrl = await run(['--pcap', traffic.file], { ...env, NATS_URL: 'http://127.0.0.1:4222' });
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /NATS_URL/);
    assert.equal(badUrl.stderr.trim().split('\n').length, 1, badUrl.stderr);
    const missing = await run(['--pcap', path.join(dir, 'nope.pcap')], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.pcap: cannot open at offset 0: ENOENT/);
  });

  test('NATS killed before a max-speed replay: the replay completes anyway; every item is published or counted dropped, and status says so once NATS is back', async () => {
    const node = 'node-kill';
    const srv = await startNatsServer({ jetstream: true });
    const admin = await connectNats({ url: srv.url, name: 'admin', log: () => {} });
    // The server itself counts what reaches it: a stream on the items subject.
    await ensureStream(admin, { name: 'CAPTURED_ITEMS', subjects: [`ws.items.${node}.>`], storage: 'file' });
    await drainAndClose(admin);
    const fifo = path.join(dir, 'replay.fifo');
    execFileSync('mkfifo', [fifo]);
    const healthPort = await freePort();
    const capture = new CaptureService(loadCaptureConfig(captureEnv(srv.url, node, 'cap-kill', {
      CAPTURE_PCAP: fifo, REPLAY_SPEED: 'max', PUBLISH_QUEUE_CAPACITY: '8', HEALTH_PORT: String(healthPort), HEALTH_HOST: '127.0.0.1', DRAIN_TIMEOUT: '2s',
    })));
    let nc2: NatsConnection | null = null;
    try {
      await capture.start(); // the replay waits for a writer on the fifo
      await srv.kill();
      const ready = () => fetch(`http://127.0.0.1:${healthPort}/readyz`).then((r) => r.status, () => 0);
      await waitFor('the service to see NATS gone', async () => (await ready()) === 503, 10_000);
      await writeFile(fifo, readFileSync(traffic.file));
      await within('the replay with NATS down', capture.replayDone, 10_000);
      assert.equal(capture.replayError, null);
      const n = traffic.calls.length;
      let s = capture.stats;
      assert.equal(s.items_produced, n);
      assert.equal(s.packets_received, frames.length);
      assert.ok(s.items_dropped > 0, `items_dropped ${s.items_dropped}`);
      assert.equal(s.items_published, 0, 'nothing can be confirmed while NATS is down');
      assert.equal(s.items_produced, s.items_published + s.items_dropped + s.items_queued + s.items_in_flight, JSON.stringify(s));
      assert.ok(s.items_queued + s.items_in_flight <= 16, 'queued: the capacity, plus one batch waiting');

      await srv.restart();
      nc2 = await connectNats({ url: srv.url, name: 'test-2', log: () => {} });
      const statuses = collect(nc2, statusSubject('capture', 'cap-kill'), (b) => decodeMessage(ReplicaStatus, b));
      await waitFor('a status with the queues published after NATS came back', () => {
        const c = statuses.at(-1)?.msg.counters;
        return c !== undefined && c.items_queued === 0 && c.items_in_flight === 0 && c.items_published > 0
          && c.packets_published + c.packets_dropped === frames.length;
      }, 20_000);
      const c = statuses.at(-1)!.msg.counters;
      assert.ok(c.items_dropped > 0);
      assert.equal(c.items_produced, n);
      assert.equal(c.items_produced, c.items_published + c.items_dropped, JSON.stringify(c));
      const info = await ensureStream(nc2, { name: 'CAPTURED_ITEMS', subjects: [`ws.items.${node}.>`], storage: 'file' });
      assert.equal(info.state.messages, c.items_published, 'what the service counts as published is what reached the server');
      s = capture.stats;
      assert.equal(s.items_published, c.items_published);
    } finally {
      await capture.stop();
      if (nc2) await drainAndClose(nc2);
      await srv.stop();
    }
  });

  test('stop() during a paced replay: no frame after it, what was pending is published, the accounting adds up', async () => {
    const ts = (r: (typeof frames)[number]) => r.sec * 1000 + r.frac / 1000;
    const spanMs = ts(frames.at(-1)!) - ts(frames[0]);
    // Paced so the replay would take about 4 s.
    const speed = Math.max(1e-4, spanMs / 4000);
    const capture = new CaptureService(loadCaptureConfig(captureEnv(server.url, 'node-stop', 'cap-stop', {
      CAPTURE_PCAP: traffic.file, REPLAY_SPEED: String(speed), PCAP_RING_DIR: path.join(dir, 'ring-stop'),
    })));
    await capture.start();
    let stopped = false;
    try {
      await waitFor('the replay to be under way', () => capture.stats.packets_received >= frames.length / 4, 10_000);
      await within('stop', capture.stop(), 5_000);
      stopped = true;
      await within('replayDone after stop', capture.replayDone, 1_000);
      assert.equal(capture.replayError, null, 'a replay stopped by shutdown is not an error');
      const s = capture.stats;
      assert.ok(s.packets_received < frames.length, `${s.packets_received} of ${frames.length} frames before stop`);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(capture.stats.packets_received, s.packets_received, 'no frame after stop()');
      assert.equal(s.pcap_ring_errors, 0);
      assert.equal(s.items_produced, s.items_published + s.items_dropped, JSON.stringify(s));
      assert.equal(s.items_dropped, 0);
    } finally {
      if (!stopped) await capture.stop();
    }
  });

  test('PCAP_RING_DIR: the snapshot of an item\'s stream holds exactly that connection\'s packets; the ring is bounded and reported', async () => {
    const ringDir = path.join(dir, 'ring');
    const node = 'node-ring';
    const seen: Record<string, any>[] = [];
    const items = collect(nc, `ws.items.${node}.>`, (b) => decodeMessage(Item, b));
    const statuses = collect(nc, statusSubject('capture', 'cap-ring'), (b) => decodeMessage(ReplicaStatus, b));
    await nc.flush();
    const capture = new CaptureService(loadCaptureConfig(captureEnv(server.url, node, 'cap-ring', { CAPTURE_PCAP: traffic.file, PCAP_RING_DIR: ringDir })));
    await capture.start();
    try {
      await within('replay', capture.replayDone, 10_000);
      await waitFor('items', () => items.length >= traffic.calls.length, 10_000);
      for (const m of items) seen.push(JSON.parse(m.msg.json.toString('utf8')));
      // One stream of each kind: a keep-alive HTTP/1.1 connection, the HTTP/2 one, a DNS flow, the Redis one.
      const pick = (pred: (it: Record<string, any>) => boolean) => seen.find(pred)!;
      const chosen = [
        pick((it) => it.protocol.version === '1.1'),
        pick((it) => it.protocol.version === '2.0'),
        pick((it) => it.protocol.name === 'dns'),
        pick((it) => it.protocol.name === 'redis'),
      ];
      for (const it of chosen) {
        const id = parseInt(it.stream, 16);
        const out = path.join(dir, `snap-${it.stream}.pcap`);
        const res = await capture.snapshot([id], out);
        assert.deepEqual(res.streams, [id]);
        assert.deepEqual(res.missing, []);
        const a = { ip: it.src.ip, port: Number(it.src.port) };
        const b = { ip: it.dst.ip, port: Number(it.dst.port) };
        const want = frames.filter((f) => frameInConversation(f.data, a, b, it.protocol.layer4 === 'UDP' ? 17 : 6));
        const got = readPcap(out);
        assert.equal(got.linkType, 1);
        assert.equal(res.frames, want.length);
        assert.deepEqual(
          got.records.map((r) => [r.sec, r.frac, r.origLen, r.data.toString('hex')]),
          want.map((r) => [r.sec, r.frac, r.origLen, r.data.toString('hex')]),
          `stream ${it.stream} (${it.protocol.name}): the snapshot holds exactly the conversation's frames`,
        );
        // The snapshot replays to the same calls that stream carried.
        const again: Record<string, any>[] = [];
        const pipeline = new CapturePipeline({ node: { name: 'x', ip: '' }, worker: 'x', onItem: (c) => again.push(c.item) });
        await readCaptureFile(out, (f) => pipeline.onFrame(f));
        pipeline.end();
        assert.deepEqual(countCalls(again.map(callOf)), countCalls(seen.filter((s) => s.stream === it.stream).map(callOf)));
        assert.ok(again.length > 0);
        // tshark agrees it is one conversation.
        if (it.protocol.layer4 === 'TCP' && spawnSync('tshark', ['-v']).status === 0) {
          const t = spawnSync('tshark', ['-r', out, '-T', 'fields', '-e', 'tcp.stream'], { encoding: 'utf8' });
          assert.equal(t.status, 0, t.stderr);
          assert.deepEqual([...new Set(t.stdout.trim().split('\n'))], ['0']);
        }
      }
      await assert.rejects(capture.snapshot([0x7fffff], path.join(dir, 'none.pcap')), /none of the streams/);
      await waitFor('a status after the replay', () => (statuses.at(-1)?.msg.counters.items_published ?? 0) >= traffic.calls.length, 5_000);
      const c = statuses.at(-1)!.msg.counters;
      const streams = new Set(seen.map((it) => it.stream)).size;
      assert.ok(c.pcap_ring_files >= streams, `${c.pcap_ring_files} files for ${streams} streams with items`);
      assert.ok(c.pcap_ring_bytes > 0);
      assert.equal(c.pcap_ring_evicted_streams, 0);
      assert.equal(c.pcap_ring_errors, 0);
    } finally {
      await capture.stop();
    }
    // The files stay for later snapshots; a small ring evicts the oldest streams and says so.
    assert.ok(readdirSync(ringDir).some((f) => /^stream-\d+\.pcap$/.test(f)));
    const small = new CaptureService(loadCaptureConfig(captureEnv(server.url, 'node-ring2', 'cap-ring2', { CAPTURE_PCAP: traffic.file, PCAP_RING_DIR: ringDir, PCAP_RING_MAX_FILES: '2' })));
    await small.start();
    try {
      await within('replay', small.replayDone, 10_000);
      const s = small.stats;
      assert.equal(s.pcap_ring_files, 2);
      assert.ok(s.pcap_ring_evicted_streams > 0);
    } finally {
      await small.stop();
    }
    assert.equal(readdirSync(ringDir).filter((f) => /^stream-\d+\.pcap$/.test(f)).length, 2, 'stop flushed the ring to disk');
  });
});
