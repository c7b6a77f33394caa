import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from './kube-api-server.ts';

interface Ev {
  type: string;
  object: KubeObject;
}

/** Runs a watch with the real client's Watch, collecting events until `until` says stop or `done` fires. */
function collectWatch(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
): { events: Ev[]; done: Promise<unknown>; abort(): Promise<void>; waitFor(n: number, ms?: number): Promise<Ev[]> } {
  const events: Ev[] = [];
  let waiters: (() => void)[] = [];
  let resolveDone!: (err: unknown) => void;
  const done = new Promise<unknown>((r) => (resolveDone = r));
  const ctrl = new Watch(kc).watch(
    path,
    query,
    (type, object) => {
      events.push({ type, object: object as KubeObject });
      for (const w of waiters) w();
    },
    (err) => resolveDone(err ?? null),
  );
  return {
    events,
    done,
    async abort() {
      (await ctrl).abort();
      await done;
    },
    async waitFor(n, ms = 3000) {
      const deadline = Date.now() + ms;
      while (events.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${n} watch events; got ${JSON.stringify(events)}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
        waiters = [];
      }
      return events;
    },
  };
}

function statusOf(err: unknown): { code: number; reason: string; message: string; kind: string } {
  assert.ok(err instanceof ApiException, `expected ApiException, got ${String(err)}`);
  assert.equal(typeof err.body, 'string', 'client-node 2.x puts the raw response text in ApiException.body');
  const body = JSON.parse(err.body as string) as { code: number; reason: string; message: string; kind: string };
  assert.equal(body.code, err.code);
  return body;
}

function cm(name: string, data: Record<string, string>, extra: Partial<KubeObject['metadata']> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ws', ...extra }, data };
}

describe('kube api server (driven by the real @kubernetes/client-node)', () => {
  let srv: KubeApiServer;
  let kc: KubeConfig;
  let api: CoreV1Api;

  before(async () => {
    srv = await startKubeApiServer({ bookmarkIntervalMs: 100 });
    kc = new KubeConfig();
    kc.loadFromString(srv.kubeconfigYaml());
    api = kc.makeApiClient(CoreV1Api);
  });
  after(async () => {
    await srv.close();
  });

  it('serves a kubeconfig the client loads', () => {
    assert.equal(kc.getCurrentCluster()?.server, srv.url);
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('creates, reads, lists, replaces, patches and deletes configmaps', async () => {
    const created = await api.createNamespacedConfigMap({
      namespace: 'ws',
      body: { metadata: { name: 'a', labels: { app: 'x' } }, data: { k: '1' } },
    });
    assert.equal(created.metadata?.name, 'a');
    assert.equal(created.metadata?.namespace, 'ws');
    assert.match(created.metadata?.resourceVersion ?? '', /^\d+$/);
    assert.match(created.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    assert.ok(created.metadata?.creationTimestamp instanceof Date, 'client-node deserialises timestamps to Date');

    await assert.rejects(
      api.createNamespacedConfigMap({ namespace: 'ws', body: { metadata: { name: 'a' } } }),
      (err) => {
        const s = statusOf(err);
        assert.deepEqual([s.code, s.reason, s.kind], [409, 'AlreadyExists', 'Status']);
        assert.equal(s.message, 'configmaps "a" already exists');
        return true;
      },
    );

    const read = await api.readNamespacedConfigMap({ namespace: 'ws', name: 'a' });
    assert.deepEqual(read.data, { k: '1' });

    await api.createNamespacedConfigMap({ namespace: 'ws', body: { metadata: { name: 'b' }, data: {} } });
    await api.createNamespacedConfigMap({ namespace: 'other', body: { metadata: { name: 'c', labels: { app: 'x' } } } });
    const list = await api.listNamespacedConfigMap({ namespace: 'ws' });
    assert.deepEqual(list.items.map((i) => i.metadata?.name), ['a', 'b']);
    assert.equal(list.kind, 'ConfigMapList');
    assert.match(list.metadata?.resourceVersion ?? '', /^\d+$/);
    const byLabel = await api.listConfigMapForAllNamespaces({ labelSelector: 'app=x' });
    assert.deepEqual(byLabel.items.map((i) => `${i.metadata?.namespace}/${i.metadata?.name}`), ['other/c', 'ws/a']);
    const byField = await api.listConfigMapForAllNamespaces({ fieldSelector: 'metadata.name=b' });
    assert.deepEqual(byField.items.map((i) => i.metadata?.name), ['b']);
    const byNs = await api.listConfigMapForAllNamespaces({ fieldSelector: 'metadata.namespace=other' });
    assert.deepEqual(byNs.items.map((i) => i.metadata?.name), ['c']);
    const setSel = await api.listConfigMapForAllNamespaces({ labelSelector: 'app in (x,y),!missing' });
    assert.equal(setSel.items.length, 2);

    // Replace: stale resourceVersion -> 409 Conflict; current -> ok.
    const stale: V1ConfigMap = { ...read, data: { k: 'stale' } };
    const fresh = await api.replaceNamespacedConfigMap({ namespace: 'ws', name: 'a', body: { ...read, data: { k: '2' } } });
    assert.equal(Number(fresh.metadata?.resourceVersion) > Number(read.metadata?.resourceVersion), true);
    assert.equal(fresh.metadata?.uid, created.metadata?.uid);
    await assert.rejects(api.replaceNamespacedConfigMap({ namespace: 'ws', name: 'a', body: stale }), (err) => {
      const s = statusOf(err);
      assert.deepEqual([s.code, s.reason], [409, 'Conflict']);
      assert.match(s.message, /the object has been modified/);
      return true;
    });
    await assert.rejects(
      api.replaceNamespacedConfigMap({ namespace: 'ws', name: 'nope', body: { metadata: { name: 'nope' } } }),
      (err) => statusOf(err).reason === 'NotFound',
    );

    // PATCH: client-node 2.x sends application/json-patch+json unless told otherwise.
    const jp = await api.patchNamespacedConfigMap({
      namespace: 'ws',
      name: 'a',
      body: [{ op: 'replace', path: '/data/k', value: '3' }, { op: 'add', path: '/data/j', value: 'x' }],
    });
    assert.deepEqual(jp.data, { k: '3', j: 'x' });
    const mp = await api.patchNamespacedConfigMap(
      { namespace: 'ws', name: 'a', body: { data: { j: null, m: 'y' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.deepEqual(mp.data, { k: '3', m: 'y' });
    const smp = await api.patchNamespacedConfigMap(
      { namespace: 'ws', name: 'a', body: { metadata: { labels: { extra: 'z' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    assert.deepEqual(smp.metadata?.labels, { app: 'x', extra: 'z' });
    await assert.rejects(
      api.patchNamespacedConfigMap(
        { namespace: 'ws', name: 'a', body: { metadata: { resourceVersion: '1' }, data: { k: 'no' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
      (err) => statusOf(err).reason === 'Conflict',
    );

    const del = await api.deleteNamespacedConfigMap({ namespace: 'ws', name: 'b' });
    assert.equal(del.status, 'Success');
    await assert.rejects(api.readNamespacedConfigMap({ namespace: 'ws', name: 'b' }), (err) => {
      const s = statusOf(err);
      assert.deepEqual([s.code, s.reason, s.message], [404, 'NotFound', 'configmaps "b" not found']);
      return true;
    });
    await assert.rejects(api.deleteNamespacedConfigMap({ namespace: 'ws', name: 'b' }), (err) => statusOf(err).code === 404);
    assert.equal(srv.get('ConfigMap', 'ws', 'b'), undefined);
    assert.equal(srv.get('ConfigMap', 'ws', 'a')?.data && (srv.get('ConfigMap', 'ws', 'a')?.data as Record<string, string>).k, '3');
  });

  it('serves secrets (stringData folded into base64 data) and pods', async () => {
    const s = await api.createNamespacedSecret({
      namespace: 'ws',
      body: { metadata: { name: 'env' }, stringData: { SCRIPTING_ENV: '{"A":"1"}' } },
    });
    assert.equal(Buffer.from(s.data?.SCRIPTING_ENV ?? '', 'base64').toString(), '{"A":"1"}');
    assert.equal(s.stringData, undefined);
    assert.equal(s.type, 'Opaque');

    srv.put({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p1', namespace: 'ws', labels: { app: 'web' } },
      spec: { nodeName: 'node-a', containers: [{ name: 'c', image: 'nginx' }] },
      status: { phase: 'Running', podIP: '10.0.0.1' },
    });
    const pods = await api.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=node-a' });
    assert.deepEqual(pods.items.map((p) => p.status?.podIP), ['10.0.0.1']);
    const none = await api.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName!=node-a' });
    assert.equal(none.items.length, 0);
    const deleted = await api.deleteNamespacedPod({ namespace: 'ws', name: 'p1' });
    assert.equal(deleted.metadata?.name, 'p1');
    assert.equal(srv.get('Pod', 'ws', 'p1'), undefined);
  });

  it('paginates lists with limit/continue', async () => {
    for (let i = 0; i < 5; i++) srv.put(cm(`page-${i}`, {}, { namespace: 'paged' }));
    const first = await api.listNamespacedConfigMap({ namespace: 'paged', limit: 2 });
    assert.deepEqual(first.items.map((i) => i.metadata?.name), ['page-0', 'page-1']);
    assert.equal(first.metadata?.remainingItemCount, 3);
    const second = await api.listNamespacedConfigMap({ namespace: 'paged', limit: 2, _continue: first.metadata?._continue });
    assert.deepEqual(second.items.map((i) => i.metadata?.name), ['page-2', 'page-3']);
    assert.equal(second.metadata?.resourceVersion, first.metadata?.resourceVersion);
  });

  it('streams watch events from a resourceVersion, with bookmarks', async () => {
    const list = await api.listNamespacedConfigMap({ namespace: 'w1' });
    const from = list.metadata?.resourceVersion;
    const w = collectWatch(kc, '/api/v1/namespaces/w1/configmaps', { resourceVersion: from, allowWatchBookmarks: true });
    await new Promise((r) => setTimeout(r, 20));
    const a = srv.put(cm('x', { v: '1' }, { namespace: 'w1' }));
    srv.put(cm('other-ns', {}, { namespace: 'w2' }));
    const b = srv.put(cm('x', { v: '2' }, { namespace: 'w1' }));
    srv.remove('ConfigMap', 'w1', 'x');
    await w.waitFor(3);
    const changes = w.events.filter((e) => e.type !== 'BOOKMARK');
    assert.deepEqual(
      changes.map((e) => [e.type, e.object.metadata.name, e.object.metadata.resourceVersion]),
      [
        ['ADDED', 'x', a.metadata.resourceVersion],
        ['MODIFIED', 'x', b.metadata.resourceVersion],
        ['DELETED', 'x', String(Number(b.metadata.resourceVersion) + 1)],
      ],
    );
    assert.equal(changes[0].object.kind, 'ConfigMap', 'watch event objects carry kind/apiVersion');
    // Bookmarks arrive every 100 ms here and carry the store's resourceVersion.
    const n = w.events.length;
    await w.waitFor(n + 1);
    const bm = w.events[n];
    assert.equal(bm.type, 'BOOKMARK');
    assert.equal(bm.object.metadata.resourceVersion, String(Number(b.metadata.resourceVersion) + 1));
    await w.abort();

    // A resumed watch replays exactly the events after the given resourceVersion.
    const resumed = collectWatch(kc, '/api/v1/namespaces/w1/configmaps', { resourceVersion: a.metadata.resourceVersion });
    await resumed.waitFor(2);
    assert.deepEqual(resumed.events.map((e) => e.type), ['MODIFIED', 'DELETED']);
    await resumed.abort();
  });

  it('sends synthetic ADDED events for a watch without a resourceVersion (and for "0")', async () => {
    srv.put(cm('s1', {}, { namespace: 'syn' }));
    srv.put(cm('s2', {}, { namespace: 'syn' }));
    for (const rv of [undefined, '0']) {
      const w = collectWatch(kc, '/api/v1/namespaces/syn/configmaps', { resourceVersion: rv });
      await w.waitFor(2);
      assert.deepEqual(w.events.map((e) => [e.type, e.object.metadata.name]), [['ADDED', 's1'], ['ADDED', 's2']]);
      srv.put(cm('s3', {}, { namespace: 'syn' }));
      await w.waitFor(3);
      assert.deepEqual(w.events[2].type, 'ADDED');
      await w.abort();
      srv.remove('ConfigMap', 'syn', 's3');
    }
  });

  it('turns selector transitions into ADDED/DELETED on a filtered watch', async () => {
    const base = srv.put(cm('t', {}, { namespace: 'sel', labels: { on: 'no' } }));
    const w = collectWatch(kc, '/api/v1/namespaces/sel/configmaps', {
      resourceVersion: base.metadata.resourceVersion,
      labelSelector: 'on=yes',
    });
    srv.put(cm('t', { a: '1' }, { namespace: 'sel', labels: { on: 'yes' } }));
    srv.put(cm('t', { a: '2' }, { namespace: 'sel', labels: { on: 'yes' } }));
    srv.put(cm('t', { a: '3' }, { namespace: 'sel', labels: { on: 'no' } }));
    await w.waitFor(3);
    assert.deepEqual(w.events.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED']);
    await w.abort();
  });

  it('answers a watch from a compacted resourceVersion with a 410 Expired ERROR event', async () => {
    const old = srv.put(cm('c1', {}, { namespace: 'cmp' }));
    srv.put(cm('c1', { v: '2' }, { namespace: 'cmp' }));
    srv.compact();
    const w = collectWatch(kc, '/api/v1/namespaces/cmp/configmaps', { resourceVersion: old.metadata.resourceVersion });
    await w.waitFor(1);
    const err = await w.done;
    assert.equal(err, null, 'the server ends the stream after the ERROR event');
    assert.equal(w.events[0].type, 'ERROR');
    const status = w.events[0].object as unknown as { kind: string; code: number; reason: string; message: string };
    assert.deepEqual([status.kind, status.code, status.reason], ['Status', 410, 'Expired']);
    assert.match(status.message, /^too old resource version: \d+ \(\d+\)$/);

    // A list with resourceVersionMatch=Exact at the old version is gone too; a plain list still works.
    await assert.rejects(
      api.listNamespacedConfigMap({ namespace: 'cmp', resourceVersion: old.metadata.resourceVersion, resourceVersionMatch: 'Exact' }),
      (e) => statusOf(e).code === 410,
    );
    const list = await api.listNamespacedConfigMap({ namespace: 'cmp', resourceVersion: old.metadata.resourceVersion });
    assert.equal(list.items.length, 1);
    // A watch from the current resourceVersion is fine.
    const ok = collectWatch(kc, '/api/v1/namespaces/cmp/configmaps', { resourceVersion: list.metadata?.resourceVersion });
    srv.put(cm('c2', {}, { namespace: 'cmp' }));
    await ok.waitFor(1);
    assert.equal(ok.events[0].type, 'ADDED');
    await ok.abort();
  });

  it('answers a watch from a future resourceVersion with a 504 ResourceVersionTooLarge ERROR event', async () => {
    const w = collectWatch(kc, '/api/v1/namespaces/f/configmaps', { resourceVersion: '999999' });
    await w.waitFor(1);
    await w.done;
    const status = w.events[0].object as unknown as { code: number; reason: string; details: { causes: { reason: string }[] } };
    assert.equal(w.events[0].type, 'ERROR');
    assert.deepEqual([status.code, status.reason, status.details.causes[0].reason], [504, 'Timeout', 'ResourceVersionTooLarge']);
  });

  it('drops watch connections abruptly and honours timeoutSeconds', async () => {
    const w = collectWatch(kc, '/api/v1/configmaps', {});
    await new Promise((r) => setTimeout(r, 50));
    srv.dropWatches();
    const err = await w.done;
    assert.ok(err instanceof Error, `a dropped watch ends with an error, got ${String(err)}`);

    const started = Date.now();
    const t = collectWatch(kc, '/api/v1/namespaces/none/configmaps', { timeoutSeconds: 1 });
    assert.equal(await t.done, null, 'a timed-out watch ends cleanly');
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 3000, `took ${took} ms`);
  });

  it('fails the next writes on request and logs requests', async () => {
    srv.failNextWrites(2, 500);
    await assert.rejects(
      api.createNamespacedConfigMap({ namespace: 'fw', body: { metadata: { name: 'a' } } }),
      (e) => {
        const s = statusOf(e);
        assert.deepEqual([s.code, s.reason], [500, 'InternalError']);
        return true;
      },
    );
    srv.failNextWrites(1, 409);
    await assert.rejects(
      api.createNamespacedConfigMap({ namespace: 'fw', body: { metadata: { name: 'a' } } }),
      (e) => statusOf(e).reason === 'Conflict',
    );
    // Reads are not affected, and the count was reset by the second call.
    await api.listNamespacedConfigMap({ namespace: 'fw' });
    const ok = await api.createNamespacedConfigMap({ namespace: 'fw', body: { metadata: { name: 'a' } } });
    assert.equal(ok.metadata?.name, 'a');
    const mine = srv.requests.filter((r) => r.path === '/api/v1/namespaces/fw/configmaps');
    assert.deepEqual(mine.map((r) => r.method), ['POST', 'POST', 'GET', 'POST']);
  });

  it('answers unknown paths with a NotFound Status', async () => {
    const res = await fetch(`${srv.url}/api/v1/namespaces/x/widgets`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { kind: string; reason: string };
    assert.deepEqual([body.kind, body.reason], ['Status', 'NotFound']);
    const bad = await fetch(`${srv.url}/api/v1/configmaps?labelSelector=${encodeURIComponent('a in b')}`);
    assert.equal(bad.status, 400);
  });
});
