/** Live loopback traffic through capture -> NATS -> script-runner: the script's counts equal the generator's. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { test } from 'node:test';
import { CaptureService, loadCaptureConfig } from '@wirescript/capture';
import { connectNats, drainAndClose } from '@wirescript/nats';
import { ConsoleLine, LOGS_WILDCARD, decodeMessage } from '@wirescript/proto';
import { putScriptSet, startNatsServer } from '@wirescript/testing';
import { collect, startRunner, waitFor } from './helpers.ts';

const SCRIPT = `// live counter
var byStatus = {};
var packets = 0;
function onItemCaptured(data) {
  var k = data.request.method + ' ' + data.response.status;
  byStatus[k] = (byStatus[k] || 0) + 1;
}
function onPacketCaptured(info) { if (info.captureLength > 0) packets++; }
jobs.schedule('report', '0 0 0 1 1 *', function () { console.log(JSON.stringify({ byStatus: byStatus, packets: packets })); });
`;

test('capture (live, lo) -> NATS -> script-runner: counts by method and status match the traffic', async (t) => {
  const server = await startNatsServer({ jetstream: true });
  const nc = await connectNats({ url: server.url, name: 'test', log: () => {} });
  const web = http.createServer((req, res) => {
    const status = Number(new URL(req.url!, 'http://x').searchParams.get('s') ?? 200);
    res.writeHead(status).end('ok');
  });
  const port = await new Promise<number>((r) => web.listen(0, '127.0.0.1', () => r((web.address() as net.AddressInfo).port)));
  await putScriptSet(nc, [{ code: SCRIPT }]);
  const runner = await startRunner(server.url, 'pipe-runner');
  const capture = new CaptureService(loadCaptureConfig({
    NATS_URL: server.url, NODE_NAME: 'node-a', REPLICA_ID: 'cap-1', LOG_LEVEL: 'warn', HEALTH_PORT: '0', STATUS_INTERVAL: '200ms',
    CAPTURE_INTERFACE: 'lo', CAPTURE_FILTER: `tcp port ${port}`, PACKET_BATCH_INTERVAL: '50ms',
  }));
  await capture.start();
  t.after(async () => {
    await capture.stop();
    await runner.stop();
    web.close();
    await drainAndClose(nc);
    await server.stop();
  });
  const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const truth: Record<string, number> = {};
  const N = 300;
  await Promise.all(Array.from({ length: N }, (_, i) => new Promise<void>((resolve, reject) => {
    const method = ['GET', 'POST', 'DELETE'][i % 3];
    const status = [200, 404, 500, 201][i % 4];
    truth[`${method} ${status}`] = (truth[`${method} ${status}`] ?? 0) + 1;
    const req = http.request({ host: '127.0.0.1', port, method, path: `/x?s=${status}`, agent }, (res) => { res.resume(); res.on('end', () => resolve()); });
    req.on('error', reject);
    req.end();
  })));
  agent.destroy();
  await waitFor(`${N} items through NATS`, () => runner.counters.itemsProcessed >= N, 20_000);
  await waitFor('packet summaries', () => runner.counters.packetsReceived > N, 10_000);
  runner.scriptEngine.runAllJobsNow();
  await waitFor('report line', () => logs.items.some((l) => l.scriptTitle === 'live counter'), 5_000);
  const report = JSON.parse(logs.items.find((l) => l.scriptTitle === 'live counter')!.text) as { byStatus: Record<string, number>; packets: number };
  assert.deepEqual(report.byStatus, truth);
  assert.ok(report.packets > N, `onPacketCaptured saw ${report.packets} packets`);
  assert.equal(capture.stats.items_dropped, 0);
  assert.equal(runner.counters.itemsDropped, 0);
});
