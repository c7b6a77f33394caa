import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig, ConfigError } from '@wirescript/config';
import { consumerConfig, redeliveryBackoff } from './actions.ts';
import { hubConfig } from './config.ts';
import { podWatchPlan } from './hub.ts';
import { PodTracker, type Pod, type PodChange } from './pods.ts';

function pod(name: string, rv: string, uid = `uid-${name}`, ns = 'default'): Pod {
  return { metadata: { name, namespace: ns, uid, resourceVersion: rv }, status: { podIP: '10.0.0.1' } };
}

function tracker(): { t: PodTracker; out: string[] } {
  const out: string[] = [];
  const t = new PodTracker((c: PodChange) => out.push(`${c.type} ${c.pod.metadata?.namespace}/${c.pod.metadata?.name}@${c.pod.metadata?.resourceVersion}${c.reconciled ? ' (relist)' : ''}`));
  return { t, out };
}

describe('PodTracker', () => {
  test('first list: everything ADDED; watch events pass through; exact repeats are dropped', () => {
    const { t, out } = tracker();
    t.sync(undefined, [pod('a', '1'), pod('b', '2')]);
    t.event('MODIFIED', pod('a', '3'));
    t.event('MODIFIED', pod('a', '3'));
    t.event('DELETED', pod('b', '4'));
    t.event('ADDED', pod('c', '5'));
    assert.deepEqual(out, ['ADDED default/a@1 (relist)', 'ADDED default/b@2 (relist)', 'MODIFIED default/a@3', 'DELETED default/b@4', 'ADDED default/c@5']);
    assert.equal(t.size, 2);
    assert.equal(t.counters.duplicates, 1);
  });

  test('a re-list converges: vanished pods DELETED with their last state, changed MODIFIED, unchanged silent, recreated DELETED+ADDED', () => {
    const { t, out } = tracker();
    t.sync(undefined, [pod('same', '1'), pod('changed', '2'), pod('gone', '3'), pod('recreated', '4', 'old-uid')]);
    out.length = 0;
    t.sync(undefined, [pod('same', '1'), pod('changed', '9'), pod('recreated', '10', 'new-uid'), pod('new', '11')]);
    assert.deepEqual(out.sort(), [
      'ADDED default/new@11 (relist)',
      'ADDED default/recreated@10 (relist)',
      'DELETED default/gone@3 (relist)',
      'DELETED default/recreated@4 (relist)',
      'MODIFIED default/changed@9 (relist)',
    ]);
    assert.equal(t.counters.reconciledDeletes, 2); // gone, and recreated's old pod
  });

  test('a namespace list only reconciles its namespace', () => {
    const { t, out } = tracker();
    t.sync('a', [pod('p', '1', 'u1', 'a')]);
    t.sync('b', [pod('q', '2', 'u2', 'b')]);
    out.length = 0;
    t.sync('a', []);
    assert.deepEqual(out, ['DELETED a/p@1 (relist)']);
    assert.ok(t.get('b', 'q'));
  });

  test('a watch event for a recreated pod (old DELETED missed) yields DELETED then ADDED', () => {
    const { t, out } = tracker();
    t.sync(undefined, [pod('x', '1', 'u-old')]);
    out.length = 0;
    t.event('ADDED', pod('x', '5', 'u-new'));
    assert.deepEqual(out, ['DELETED default/x@1 (relist)', 'ADDED default/x@5']);
  });
});

describe('hub config', () => {
  const base = { NATS_URL: 'nats://127.0.0.1:4222' };
  test('defaults, and bad values name the variable', () => {
    const c = loadConfig(hubConfig, base);
    assert.equal(c.podWatch, 'auto');
    assert.deepEqual(c.podNamespaces, []);
    assert.equal(c.actionMaxInFlight, 256);
    assert.equal(c.actionAckWaitMs, 30_000);
    assert.equal('nodeName' in c, false, 'the hub has no NODE_NAME: it is always "hub"');
    assert.throws(() => loadConfig(hubConfig, { ...base, POD_WATCH: 'maybe' }), (e: unknown) => e instanceof ConfigError && /POD_WATCH/.test(e.message));
    assert.throws(() => loadConfig(hubConfig, { ...base, ACTION_MAX_IN_FLIGHT: '0' }), (e: unknown) => e instanceof ConfigError && /ACTION_MAX_IN_FLIGHT/.test(e.message));
    assert.deepEqual(loadConfig(hubConfig, { ...base, POD_NAMESPACES: 'shop, kube-system' }).podNamespaces, ['shop', 'kube-system']);
  });

  test('POD_WATCH=auto watches only with a cluster or a KUBECONFIG', () => {
    assert.equal(podWatchPlan(loadConfig(hubConfig, base)).watch, false);
    assert.equal(podWatchPlan(loadConfig(hubConfig, { ...base, POD_WATCH: 'on', KUBECONFIG: '/x' })).watch, true);
    assert.equal(podWatchPlan(loadConfig(hubConfig, { ...base, KUBECONFIG: '/x' })).watch, true);
    assert.equal(podWatchPlan(loadConfig(hubConfig, { ...base, KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' })).watch, true);
    assert.equal(podWatchPlan(loadConfig(hubConfig, { ...base, POD_WATCH: 'off', KUBECONFIG: '/x' })).watch, false);
    const plan = podWatchPlan(loadConfig(hubConfig, { ...base, KUBECONFIG: '/does/not/exist' }));
    assert.ok(plan.watch);
    assert.throws(() => plan.load(), /does\/not\/exist/);
  });

  test('consumer: explicit acks, bounded in flight, backoff per redelivery', () => {
    assert.deepEqual(redeliveryBackoff(30_000, 5), [30_000, 60_000, 120_000, 240_000]);
    assert.deepEqual(redeliveryBackoff(100_000, 4), [100_000, 200_000, 300_000]);
    assert.deepEqual(redeliveryBackoff(1_000, 1), []);
    const c = consumerConfig({ maxInFlight: 8, ackWaitMs: 2_000, maxDeliver: 3 });
    assert.equal(c.ack_policy, 'explicit');
    assert.equal(c.max_ack_pending, 8);
    assert.equal(c.ack_wait, 2_000_000_000);
    assert.deepEqual(c.backoff, [2_000_000_000, 4_000_000_000]);
  });
});
