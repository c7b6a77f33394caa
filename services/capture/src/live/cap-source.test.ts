import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { LiveCapture, LiveCaptureError } from './cap-source.ts';

async function udpBurst(port: number, n: number): Promise<void> {
  const s = dgram.createSocket('udp4');
  const payload = Buffer.alloc(1000, 7);
  for (let i = 0; i < n; i++) {
    await new Promise<void>((r) => s.send(payload, port, '127.0.0.1', () => r()));
  }
  s.close();
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  const port = await new Promise<number>((r) => s.bind(0, '127.0.0.1', () => r(s.address().port)));
  s.close();
  return port;
}

test('kernel counters: light traffic is all delivered, nothing dropped', async () => {
  const port = await freeUdpPort();
  const cap = new LiveCapture({ device: 'lo', filter: `udp dst port ${port}`, bufferBytes: 64 * 1024 * 1024 });
  let got = 0;
  cap.start(() => { got++; });
  await udpBurst(port, 200);
  const t0 = Date.now();
  while (got < 200 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
  const k = cap.kernelStats();
  cap.stop();
  assert.ok(k, 'the capture socket was identified');
  assert.equal(k.drops, 0);
  assert.equal(got, 200);
  // On lo the kernel passes each datagram twice (out and in); libpcap drops the outgoing copy itself.
  assert.ok(k.packets >= got, `kernel passed ${k.packets}`);
});

test('kernel counters: a consumer slower than the traffic makes the kernel drop, and the drops are counted', async () => {
  const port = await freeUdpPort();
  const cap = new LiveCapture({ device: 'lo', filter: `udp dst port ${port}`, bufferBytes: 1024 * 1024 });
  let got = 0;
  cap.start(() => {
    got++;
    const t = performance.now();
    while (performance.now() - t < 1) { /* a slow script */ }
  });
  const N = 6000;
  await udpBurst(port, N);
  await new Promise((r) => setTimeout(r, 500));
  const k = cap.kernelStats();
  cap.stop();
  assert.ok(k);
  assert.ok(k.drops > 0, `expected kernel drops, got ${JSON.stringify(k)} with ${got} delivered`);
  // Every datagram is either delivered or counted as dropped: nothing is lost silently.
  assert.ok(got < N, `some were lost: delivered ${got} of ${N}`);
  assert.ok(got + k.drops >= N, `delivered ${got} + dropped ${k.drops} vs sent ${N}`);
});

test('a bad interface or filter is a clear LiveCaptureError', () => {
  const bad = new LiveCapture({ device: 'no-such-if0', filter: '', bufferBytes: 1024 * 1024 });
  assert.throws(() => bad.start(() => {}), (e: Error) => e instanceof LiveCaptureError && /no-such-if0/.test(e.message));
  const badFilter = new LiveCapture({ device: 'lo', filter: 'tcp prot 80 and', bufferBytes: 1024 * 1024 });
  assert.throws(() => badFilter.start(() => {}), (e: Error) => e instanceof LiveCaptureError && /filter/.test(e.message));
});
