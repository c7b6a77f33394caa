import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectNats, drainAndClose, type NatsConnection } from '@wirescript/nats';
import { startNatsServer, type NatsServer } from '@wirescript/testing';
import {
  PodDirectory, PodMapWriter, canonicalIp, ipFromPodMapKey, openPodMapKv, podIps, podMapKey, readBucket, type PodLike,
} from './index.ts';

function pod(ns: string, name: string, ip: string | string[], extra: { created?: string; node?: string; uid?: string; phase?: string; hostNetwork?: boolean } = {}): PodLike {
  const ips = Array.isArray(ip) ? ip : [ip];
  return {
    metadata: { namespace: ns, name, uid: extra.uid ?? `uid-${name}`, creationTimestamp: extra.created ?? '2025-01-01T00:00:00Z' },
    spec: { nodeName: extra.node ?? 'node-a', hostNetwork: extra.hostNetwork },
    status: { phase: extra.phase ?? 'Running', podIP: ips[0], podIPs: ips.map((x) => ({ ip: x })) },
  };
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('pod-map keys', () => {
  test('IPs are canonical and keys round-trip', () => {
    assert.equal(canonicalIp('10.1.2.3'), '10.1.2.3');
    assert.equal(canonicalIp('FD00:0:0:0:0:0:0:1'), 'fd00::1');
    assert.equal(canonicalIp('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(canonicalIp('not-an-ip'), undefined);
    assert.equal(canonicalIp('fe80::1%eth0'), undefined);
    for (const ip of ['10.1.2.3', 'fd00::1', '2001:db8::1:0:0:1', '::1']) {
      const key = podMapKey(ip);
      assert.match(key, /^[-_a-zA-Z0-9]+$/);
      assert.equal(ipFromPodMapKey(key), ip);
    }
    assert.equal(podMapKey('10.1.2.3'), '10_1_2_3');
    assert.equal(podMapKey('fd00::1'), 'fd00--1');
    assert.equal(ipFromPodMapKey('something_else'), undefined);
  });

  test('a pod owns its podIPs, not when on the host network or finished', () => {
    assert.deepEqual(podIps(pod('a', 'p', ['10.0.0.1', 'FD00::1'])), ['10.0.0.1', 'fd00::1']);
    assert.deepEqual(podIps(pod('a', 'p', '10.0.0.1', { hostNetwork: true })), []);
    assert.deepEqual(podIps(pod('a', 'p', '10.0.0.1', { phase: 'Succeeded' })), []);
    assert.deepEqual(podIps(pod('a', 'p', '10.0.0.1', { phase: 'Failed' })), []);
    assert.deepEqual(podIps({ metadata: { name: 'pending' }, status: { phase: 'Pending' } }), []);
    assert.deepEqual(podIps({ metadata: { name: 'x' }, status: { podIP: '10.0.0.9', podIPs: [{ ip: 'bogus' }] } }), ['10.0.0.9']);
  });
});

describe('pod-map on a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({ url: server.url, name: 'pod-map-test', log: () => {}, reconnectTimeWait: 100, reconnectJitter: 50 });
  });
  after(async () => {
    await drainAndClose(nc);
    await server.stop();
  });

  test('writer keeps the bucket in sync; directory resolves and follows; IP reuse; stale keys go', async () => {
    const bucket = 'ws_pods_t1';
    const kv = await openPodMapKv(nc, bucket);
    // Left over from an earlier hub run: a pod that no longer exists.
    await kv.put(podMapKey('10.9.9.9'), JSON.stringify({ name: 'gone', namespace: 'old', node: 'n', uid: 'u' }));
    await kv.put('not-an-ip-key', 'x');

    const dir = await PodDirectory.open(nc, { bucket });
    assert.deepEqual(dir.resolve('10.9.9.9'), { name: 'gone', namespace: 'old' });
    assert.equal(dir.stats.invalid, 1);

    const w = await PodMapWriter.open(nc, { bucket });
    assert.equal(w.stats.foreignKeys, 1);
    w.upsert(pod('shop', 'web-1', ['10.0.0.1', 'fd00::1']));
    w.upsert(pod('shop', 'db-0', '10.0.0.2'));
    w.upsert(pod('kube-system', 'proxy', '192.168.1.10', { hostNetwork: true }));
    w.reconcile();
    assert.equal(await w.flushed(), true);

    const content = await readBucket(kv);
    assert.deepEqual(JSON.parse(content.get('10_0_0_1')!), { name: 'web-1', namespace: 'shop', node: 'node-a', uid: 'uid-web-1' });
    assert.ok(content.has('fd00--1'));
    assert.ok(content.has('10_0_0_2'));
    assert.equal(content.has('10_9_9_9'), false, 'stale key deleted');
    assert.equal(content.has('192_168_1_10'), false, 'host-network pods are not mapped');
    assert.equal(content.get('not-an-ip-key'), 'x', 'foreign keys left alone');

    await waitFor('directory has the pods', () => dir.resolve('10.0.0.2') !== undefined && dir.resolve('10.9.9.9') === undefined);
    const ref = dir.resolve('10.0.0.1');
    assert.deepEqual(ref, { name: 'web-1', namespace: 'shop' });
    assert.equal(dir.resolve('10.0.0.1'), ref, 'the same object each lookup');
    assert.ok(Object.isFrozen(ref));
    assert.deepEqual(dir.resolve('fd00::1'), { name: 'web-1', namespace: 'shop' });
    assert.equal(dir.resolve('10.0.0.3'), undefined);

    // IP reuse: db-0 is being replaced; the new pod gets its IP before db-0's DELETED arrives.
    const putsBefore = w.stats.puts;
    w.upsert(pod('shop', 'db-1', '10.0.0.2', { created: '2025-01-02T00:00:00Z' }));
    await w.flushed();
    await waitFor('new owner of 10.0.0.2', () => dir.resolve('10.0.0.2')?.name === 'db-1');
    w.remove('shop', 'db-0');
    await w.flushed();
    assert.equal(w.stats.puts, putsBefore + 1, 'removing the old claimant does not touch the key');
    assert.ok(w.stats.conflicts >= 1);
    // An older pod claiming a newer pod's IP (a late MODIFIED of a terminating pod) does not take it.
    w.upsert(pod('shop', 'db-0', '10.0.0.2', { created: '2024-12-31T00:00:00Z' }));
    await w.flushed();
    assert.equal(JSON.parse((await readBucket(kv)).get('10_0_0_2')!).name, 'db-1');
    w.remove('shop', 'db-0');
    w.remove('shop', 'db-1');
    await w.flushed();
    await waitFor('10.0.0.2 removed', () => dir.resolve('10.0.0.2') === undefined);

    // A pod that moves to another IP, and one that finishes.
    w.upsert(pod('shop', 'web-1', '10.0.0.7'));
    await w.flushed();
    await waitFor('web-1 moved', () => dir.resolve('10.0.0.7')?.name === 'web-1' && dir.resolve('10.0.0.1') === undefined && dir.resolve('fd00::1') === undefined);
    w.upsert(pod('shop', 'web-1', '10.0.0.7', { phase: 'Succeeded' }));
    await w.flushed();
    await waitFor('finished pod unmapped', () => dir.resolve('10.0.0.7') === undefined);
    assert.equal(dir.size, 0);

    await w.stop();
    await dir.stop();
  });

  test('survives a nats-server crash: writes are retried, the directory follows', async () => {
    const bucket = 'ws_pods_t2';
    const changes: string[] = [];
    const dir = await PodDirectory.open(nc, { bucket, onChange: (ip, p) => changes.push(`${ip}=${p?.name ?? '-'}`) });
    const w = await PodMapWriter.open(nc, { bucket, retryMaxMs: 500 });
    w.upsert(pod('a', 'p1', '10.1.0.1'));
    await w.flushed();
    await waitFor('p1 seen', () => dir.resolve('10.1.0.1')?.name === 'p1');

    await server.kill();
    w.upsert(pod('a', 'p2', '10.1.0.2'));
    w.remove('a', 'p1');
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    assert.equal(await w.flushed(20_000), true, `writer flushed after the restart (last error: ${w.lastError})`);
    await waitFor('directory converged', () => dir.resolve('10.1.0.2')?.name === 'p2' && dir.resolve('10.1.0.1') === undefined, 20_000);
    assert.deepEqual(changes.slice(0, 1), ['10.1.0.1=p1']);
    await w.stop();
    await dir.stop();
  });
});
