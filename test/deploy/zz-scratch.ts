import { startKubeApiServer } from '@wirescript/testing';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const k = await startKubeApiServer();
k.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeshark-config-map', namespace: 'traffic', annotations: { 'meta.helm.sh/release-name': 'ws' } }, data: { SCRIPTING_SCRIPTS: '{"0":{"title":"a","code":"x","active":true}}' } } as any);
writeFileSync('/tmp/lk/kc', k.kubeconfigYaml());
try {
  const out = execFileSync(process.argv[2], ['template', 'ws', '/tmp/lk/chart', '-n', 'traffic', '--dry-run=server', '--kubeconfig', '/tmp/lk/kc'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  console.log(out);
} catch (e: any) { console.log('ERR', e.stderr, e.stdout); }
console.log(k.requests);
await k.close();
