import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kubeConfigFrom, KubeConfigError } from './index.ts';

function kubeconfig(server: string, ctx = 'test'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${ctx}-cluster`,
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    `- name: ${ctx}-user`,
    '  user: {}',
    'contexts:',
    `- name: ${ctx}`,
    '  context:',
    `    cluster: ${ctx}-cluster`,
    `    user: ${ctx}-user`,
    `current-context: ${ctx}`,
    '',
  ].join('\n');
}

describe('kubeConfigFrom', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ws-kubeconfig-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads YAML text and a file path', async () => {
    const kc = kubeConfigFrom({ kubeconfig: kubeconfig('http://127.0.0.1:1'), env: {} });
    assert.equal(kc.getCurrentCluster()?.server, 'http://127.0.0.1:1');
    const file = path.join(dir, 'kc.yaml');
    await writeFile(file, kubeconfig('http://127.0.0.1:2'));
    assert.equal(kubeConfigFrom({ kubeconfig: file, env: {} }).getCurrentCluster()?.server, 'http://127.0.0.1:2');
  });

  it('prefers in-cluster when KUBERNETES_SERVICE_HOST is set', async () => {
    const sa = path.join(dir, 'sa');
    await mkdir(sa, { recursive: true });
    await writeFile(path.join(sa, 'token'), 'tok');
    await writeFile(path.join(sa, 'namespace'), 'wirescript\n');
    const env = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: '/nope' };
    const kc = kubeConfigFrom({ env, serviceAccountDir: sa });
    assert.equal(kc.getCurrentCluster()?.server, 'https://10.0.0.1:443');
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, 'wirescript');
    // inCluster: false skips it, and then $KUBECONFIG must exist.
    assert.throws(() => kubeConfigFrom({ env, inCluster: false, serviceAccountDir: sa }), KubeConfigError);
    // inCluster: true without the environment is a clear error.
    assert.throws(() => kubeConfigFrom({ env: {}, inCluster: true, serviceAccountDir: sa }), /KUBERNETES_SERVICE_HOST/);
    // ...and so is a missing service-account token.
    assert.throws(
      () => kubeConfigFrom({ env, serviceAccountDir: path.join(dir, 'no-sa') }),
      (e) => e instanceof KubeConfigError && /token/.test(e.message),
    );
  });

  it('falls back to $KUBECONFIG (merged path list), then ~/.kube/config', async () => {
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    await writeFile(a, kubeconfig('http://127.0.0.1:3', 'a'));
    await writeFile(b, kubeconfig('http://127.0.0.1:4', 'b'));
    const kc = kubeConfigFrom({ env: { KUBECONFIG: `${a}${path.delimiter}${b}` } });
    assert.equal(kc.getCurrentCluster()?.server, 'http://127.0.0.1:3');
    assert.deepEqual(kc.getContexts().map((c) => c.name), ['a', 'b']);

    const home = path.join(dir, 'home');
    await mkdir(path.join(home, '.kube'), { recursive: true });
    await writeFile(path.join(home, '.kube', 'config'), kubeconfig('http://127.0.0.1:5'));
    assert.equal(kubeConfigFrom({ env: {}, homeDir: home }).getCurrentCluster()?.server, 'http://127.0.0.1:5');
  });

  it('throws KubeConfigError with a clear message otherwise', () => {
    assert.throws(
      () => kubeConfigFrom({ env: {}, homeDir: path.join(dir, 'empty-home') }),
      (e) => e instanceof KubeConfigError && /no Kubernetes configuration found/.test(e.message),
    );
    assert.throws(() => kubeConfigFrom({ kubeconfig: path.join(dir, 'missing.yaml'), env: {} }), /missing or unreadable/);
    assert.throws(
      () => kubeConfigFrom({ kubeconfig: 'apiVersion: v1\nclusters: [\n', env: {} }),
      (e) => e instanceof KubeConfigError && e.cause !== undefined,
    );
    assert.throws(
      () => kubeConfigFrom({ kubeconfig: 'apiVersion: v1\nkind: Config\ncurrent-context: ghost\n', env: {} }),
      /ghost/,
    );
  });
});
