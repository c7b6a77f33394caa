import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, it } from 'node:test';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '@wirescript/testing';
import { kubeConfigFrom, watchResource, type ResourceWatcher, type WatchEvent } from './index.ts';

type Obj = KubeObject & { data?: Record<string, string> };

function cm(name: string, v: string, ns = 'ws'): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { v } };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Records every callback as a line: "sync <names>" or "<TYPE> <name>=<v>". */
function recorder() {
  const log: string[] = [];
  const syncs: { items: Obj[]; rv: string }[] = [];
  const events: WatchEvent<Obj>[] = [];
  const errors: Error[] = [];
  return {
    log,
    syncs,
    events,
    errors,
    onSync(items: Obj[], rv: string) {
      syncs.push({ items, rv });
      log.push(`sync ${items.map((i) => `${i.metadata.name}=${i.data?.v ?? ''}`).join(',')}`);
    },
    onEvent(e: WatchEvent<Obj>) {
      events.push(e);
      log.push(`${e.type} ${e.object.metadata.name}=${e.object.data?.v ?? ''}`);
    },
    onError(err: Error) {
      errors.push(err);
    },
  };
}

describe('watchResource against the test API server (real client-node underneath)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  async function server(port?: number): Promise<KubeApiServer> {
    const srv = await startKubeApiServer({ port, bookmarkIntervalMs: 200 });
    cleanups.push(() => srv.close());
    return srv;
  }
  function watch(srv: KubeApiServer, rec: ReturnType<typeof recorder>, extra: { path?: string; labelSelector?: string; fieldSelector?: string } = {}): ResourceWatcher {
    const w = watchResource<Obj>(kubeConfigFrom({ kubeconfig: srv.kubeconfigYaml() }), {
      path: extra.path ?? '/api/v1/namespaces/ws/configmaps',
      labelSelector: extra.labelSelector,
      fieldSelector: extra.fieldSelector,
      onSync: (i, rv) => rec.onSync(i, rv),
      onEvent: (e) => rec.onEvent(e),
      onError: (e) => rec.onError(e),
      backoff: { initialMs: 20, maxMs: 100 },
    });
    cleanups.push(() => w.stop());
    return w;
  }

  it('syncs the full state, then delivers each change', async () => {
    const srv = await server();
    srv.put(cm('a', '1'));
    srv.put(cm('b', '1'));
    srv.put(cm('elsewhere', '1', 'other'));
    const rec = recorder();
    const w = watch(srv, rec);
    await w.synced;
    assert.deepEqual(rec.log, ['sync a=1,b=1']);
    assert.equal(rec.syncs[0].rv, srv.get('ConfigMap', 'other', 'elsewhere')?.metadata.resourceVersion);
    assert.equal(rec.syncs[0].items[0].kind, 'ConfigMap', 'list items get kind/apiVersion back');
    assert.equal(rec.syncs[0].items[0].apiVersion, 'v1');
    assert.equal(typeof rec.syncs[0].items[0].metadata.creationTimestamp, 'string', 'plain JSON, as on the wire');

    await until('the watch to open', () => srv.openWatches() === 1);
    srv.put(cm('c', '1'));
    srv.put(cm('a', '2'));
    srv.put(cm('x', '1', 'other'));
    srv.remove('ConfigMap', 'ws', 'b');
    await until('3 events', () => rec.events.length === 3);
    assert.deepEqual(rec.log, ['sync a=1,b=1', 'ADDED c=1', 'MODIFIED a=2', 'DELETED b=1']);
    assert.equal(rec.events[1].object.metadata.resourceVersion, srv.get('ConfigMap', 'ws', 'a')?.metadata.resourceVersion);
    assert.deepEqual({ ...w.stats }, { lists: 1, watches: 1, events: 3, reconnects: 0, gone410: 0, errors: 0 });
    const q = srv.requests.find((r) => r.query.includes('watch=true'));
    assert.match(q?.query ?? '', /allowWatchBookmarks=true/);
    assert.match(q?.query ?? '', new RegExp(`resourceVersion=${rec.syncs[0].rv}(&|$)`));
  });

  it('resumes after dropped watch connections without losing or duplicating events', async () => {
    const srv = await server();
    srv.put(cm('a', '0'));
    const rec = recorder();
    const w = watch(srv, rec);
    await w.synced;
    const expected = ['sync a=0'];
    for (let round = 1; round <= 5; round++) {
      await until(`watch ${round} to open`, () => srv.openWatches() === 1);
      srv.put(cm('a', `${round}`));
      expected.push(`MODIFIED a=${round}`);
      await until(`event of round ${round}`, () => rec.log.length === expected.length);
      srv.dropWatches();
      // Changes while the client is disconnected must arrive after it reconnects.
      srv.put(cm(`gap${round}`, `${round}`));
      expected.push(`ADDED gap${round}=${round}`);
      if (round % 2 === 0) {
        srv.remove('ConfigMap', 'ws', `gap${round - 1}`);
        expected.push(`DELETED gap${round - 1}=${round - 1}`);
      }
    }
    await until('every event', () => rec.log.length >= expected.length);
    await sleep(50);
    assert.deepEqual(rec.log, expected);
    assert.equal(w.stats.lists, 1, 'no re-list was needed');
    assert.equal(w.stats.reconnects, 5);
    assert.equal(w.stats.gone410, 0);
    assert.equal(rec.errors.length, 5, 'each dropped connection is reported');
    assert.match(rec.errors[0].message, /connection lost/);
  });

  it('re-lists with the correct full state after compaction (410 Gone)', async () => {
    const srv = await server();
    srv.put(cm('a', '1'));
    srv.put(cm('b', '1'));
    const rec = recorder();
    const w = watch(srv, rec);
    await w.synced;
    await until('the watch to open', () => srv.openWatches() === 1);
    srv.dropWatches();
    // While disconnected: changes, then the history is compacted away.
    srv.put(cm('a', '2'));
    srv.remove('ConfigMap', 'ws', 'b');
    srv.put(cm('c', '1'));
    srv.compact();
    await until('the re-list', () => rec.syncs.length === 2);
    assert.deepEqual(rec.log, ['sync a=1,b=1', 'sync a=2,c=1']);
    assert.equal(rec.syncs[1].rv, srv.get('ConfigMap', 'ws', 'c')?.metadata.resourceVersion);
    assert.equal(w.stats.gone410, 1);
    assert.equal(w.stats.lists, 2);
    // ...and it keeps watching from the new list.
    await until('the new watch', () => srv.openWatches() === 1);
    srv.put(cm('d', '1'));
    await until('the next event', () => rec.log.length === 3);
    assert.equal(rec.log[2], 'ADDED d=1');
  });

  it('backs off while the server is down, then recovers (re-lists a restarted server)', async () => {
    const first = await startKubeApiServer({ bookmarkIntervalMs: 200 });
    const port = Number(new URL(first.url).port);
    for (let i = 0; i < 10; i++) first.put(cm('a', `${i}`));
    const rec = recorder();
    const w = watch(first, rec);
    await w.synced;
    await until('the watch to open', () => first.openWatches() === 1);
    await first.close();

    await until('several failed attempts', () => rec.errors.length >= 4);
    const attempts = rec.errors.length;
    // Backoff grows to maxMs (100 ms, jittered to >= 50 ms): no tight loop.
    await sleep(300);
    assert.ok(rec.errors.length - attempts <= 7, `too many retries: ${rec.errors.length - attempts} in 300 ms`);
    assert.match(rec.errors.at(-1)!.message, /WATCH|LIST/);

    // A fresh server on the same port, with a smaller resourceVersion than the client's: it must re-list.
    const second = await server(port);
    second.put(cm('z', 'new'));
    await until('the re-list on the new server', () => rec.syncs.length === 2);
    assert.deepEqual(rec.log, ['sync a=9', 'sync z=new']);
    assert.equal(w.stats.gone410, 1, 'the too-large resourceVersion answer triggers a re-list');
    await until('the new watch', () => second.openWatches() === 1);
    second.put(cm('z', 'newer'));
    await until('an event from the new server', () => rec.log.length === 3);
    assert.equal(rec.log[2], 'MODIFIED z=newer');
  });

  it('reports list errors and keeps retrying until the first sync', async () => {
    const srv = await server();
    const rec = recorder();
    const w = watch(srv, rec, { fieldSelector: 'data.v=1' }); // the real server rejects unsupported field labels
    await until('list errors', () => rec.errors.length >= 2);
    assert.match(rec.errors[0].message, /HTTP 400 BadRequest: field label not supported/);
    assert.equal((rec.errors[0] as Error & { code?: number }).code, 400);
    assert.equal(w.stats.lists, 0);
    await w.stop();
    await assert.rejects(w.synced, /stopped before the first list/);
  });

  it('keeps going when a handler throws', async () => {
    const srv = await server();
    const errors: Error[] = [];
    const seen: string[] = [];
    const w = watchResource<Obj>(kubeConfigFrom({ kubeconfig: srv.kubeconfigYaml() }), {
      path: '/api/v1/configmaps',
      onSync() {
        throw new Error('sync boom');
      },
      onEvent(e) {
        seen.push(e.object.metadata.name);
        if (e.object.metadata.name === 'bad') throw new Error('event boom');
      },
      onError: (e) => errors.push(e),
      backoff: { initialMs: 20, maxMs: 100 },
    });
    cleanups.push(() => w.stop());
    await w.synced;
    await until('the watch to open', () => srv.openWatches() === 1);
    srv.put(cm('bad', '1'));
    srv.put(cm('good', '1', 'other'));
    await until('both events', () => seen.length === 2);
    assert.deepEqual(seen, ['bad', 'good']);
    assert.deepEqual(errors.map((e) => e.message.replace(/.*: /, '')), ['sync boom', 'event boom']);
  });

  it('watches pods across namespaces with selectors', async () => {
    const srv = await server();
    const pod = (name: string, ns: string, node: string, app: string): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels: { app } },
      spec: { nodeName: node },
      status: { phase: 'Running' },
    });
    srv.put(pod('p1', 'a', 'n1', 'web'));
    srv.put(pod('p2', 'b', 'n2', 'web'));
    srv.put(pod('p3', 'b', 'n1', 'db'));
    const rec = recorder();
    const w = watch(srv, rec, { path: '/api/v1/pods', fieldSelector: 'spec.nodeName=n1', labelSelector: 'app=web' });
    await w.synced;
    assert.deepEqual(rec.syncs[0].items.map((p) => p.metadata.name), ['p1']);
    assert.equal(rec.syncs[0].items[0].kind, 'Pod');
    await until('the watch to open', () => srv.openWatches() === 1);
    srv.put(pod('p4', 'c', 'n1', 'web'));
    srv.put(pod('p5', 'c', 'n2', 'web'));
    srv.put({ ...pod('p1', 'a', 'n1', 'web'), status: { phase: 'Succeeded' } });
    srv.remove('Pod', 'a', 'p1');
    await until('3 events', () => rec.events.length === 3);
    assert.deepEqual(rec.events.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED p4', 'MODIFIED p1', 'DELETED p1']);
  });

  it('stop() ends the watch and any backoff promptly, leaving no open connections', async () => {
    const srv = await server();
    const rec = recorder();
    const w = watch(srv, rec);
    await w.synced;
    await until('the watch to open', () => srv.openWatches() === 1);
    const t0 = Date.now();
    await w.stop();
    assert.ok(Date.now() - t0 < 500, 'stop() is prompt');
    await until('the server to see the watch close', () => srv.openWatches() === 0, 2000);
    await until('every connection to close', () => srv.openConnections() === 0, 2000);
    const before = srv.requests.length;
    srv.put(cm('after-stop', '1'));
    await sleep(100);
    assert.equal(srv.requests.length, before, 'no request after stop()');
    assert.deepEqual(rec.log, ['sync ']);
    await w.stop(); // idempotent

    // Stopping during a backoff (server unreachable) is prompt too.
    const slow = watchResource<Obj>(kubeConfigFrom({ kubeconfig: srv.kubeconfigYaml().replace(srv.url, 'http://127.0.0.1:1') }), {
      path: '/api/v1/configmaps',
      onSync() {},
      onEvent() {},
      backoff: { initialMs: 10_000, maxMs: 10_000 },
    });
    await until('the first attempt to fail', () => slow.stats.errors === 1);
    const t1 = Date.now();
    await slow.stop();
    assert.ok(Date.now() - t1 < 200, 'stop() cancels the backoff sleep');
    await assert.rejects(slow.synced);
  });
});
