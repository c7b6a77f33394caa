import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** The Kubernetes configuration cannot be found or loaded. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
}

export interface KubeConfigOptions {
  /** A kubeconfig file path or the YAML text itself. */
  kubeconfig?: string;
  /** true: the pod's service account; false: never; unset: when KUBERNETES_SERVICE_HOST is set. */
  inCluster?: boolean;
  /** Where KUBERNETES_SERVICE_HOST/PORT and KUBECONFIG are read from (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Home folder for ~/.kube/config (default os.homedir()). */
  homeDir?: string;
  /** Service-account folder for in-cluster config (default /var/run/secrets/kubernetes.io/serviceaccount). */
  serviceAccountDir?: string;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

function readable(file: string): boolean {
  try {
    accessSync(file, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** YAML text rather than a path: has a newline or starts like a kubeconfig document. */
function looksLikeYaml(s: string): boolean {
  return s.includes('\n') || /^\s*(apiVersion|kind|clusters|contexts|users|current-context)\s*:/.test(s) || s.trim().startsWith('{');
}

function inClusterConfig(env: Readonly<Record<string, string | undefined>>, saDir: string): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeConfigError(
      'in-cluster Kubernetes config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (are we running in a pod?)',
    );
  }
  const token = path.join(saDir, 'token');
  const ca = path.join(saDir, 'ca.crt');
  if (!readable(token)) {
    throw new KubeConfigError(`in-cluster Kubernetes config: service account token ${token} is missing or unreadable`);
  }
  const kc = new KubeConfig();
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const namespaceFile = path.join(saDir, 'namespace');
  const namespace = readable(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  kc.loadFromOptions({
    clusters: [{ name: 'inCluster', server, caFile: readable(ca) ? ca : undefined, skipTLSVerify: false }],
    users: [{ name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: token } } }],
    contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser', namespace }],
    currentContext: 'inClusterContext',
  });
  return kc;
}

function load(what: string, fn: () => void): void {
  try {
    fn();
  } catch (cause) {
    throw new KubeConfigError(`cannot load the kubeconfig ${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

function fromFiles(files: string[], source: string): KubeConfig {
  const kc = new KubeConfig();
  files.forEach((file, i) => {
    if (!readable(file)) throw new KubeConfigError(`kubeconfig file ${file} (from ${source}) is missing or unreadable`);
    if (i === 0) load(`file ${file}`, () => kc.loadFromFile(file));
    else {
      const more = new KubeConfig();
      load(`file ${file}`, () => more.loadFromFile(file));
      load(`file ${file}`, () => kc.mergeConfig(more, true));
    }
  });
  return kc;
}

function validated(kc: KubeConfig, source: string): KubeConfig {
  const ctxName = kc.getCurrentContext();
  if (!ctxName) throw new KubeConfigError(`the kubeconfig from ${source} has no current-context`);
  if (!kc.getContextObject(ctxName)) {
    throw new KubeConfigError(`the kubeconfig from ${source} names current-context "${ctxName}" but defines no such context`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeConfigError(`the kubeconfig from ${source}: context "${ctxName}" names no known cluster`);
  if (!cluster.server) throw new KubeConfigError(`the kubeconfig from ${source}: cluster "${cluster.name}" has no server`);
  try {
    new URL(cluster.server);
  } catch (cause) {
    throw new KubeConfigError(`the kubeconfig from ${source}: cluster "${cluster.name}" server "${cluster.server}" is not a URL`, {
      cause,
    });
  }
  return kc;
}

/**
 * A KubeConfig from, in order: `opts.kubeconfig` (a file path or YAML text);
 * in-cluster service account when `inCluster` is true, or unset and
 * KUBERNETES_SERVICE_HOST is set; `$KUBECONFIG` (path-list, merged);
 * `~/.kube/config`. Throws KubeConfigError saying what was tried.
 */
export function kubeConfigFrom(opts: KubeConfigOptions = {}): KubeConfig {
  const env = opts.env ?? process.env;
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;

  if (opts.kubeconfig !== undefined && opts.kubeconfig.trim() !== '') {
    const given = opts.kubeconfig;
    if (looksLikeYaml(given)) {
      const kc = new KubeConfig();
      load('text', () => kc.loadFromString(given));
      return validated(kc, 'the given YAML text');
    }
    return validated(fromFiles([given], 'the kubeconfig option'), given);
  }

  if (opts.inCluster === true || (opts.inCluster === undefined && env.KUBERNETES_SERVICE_HOST)) {
    return validated(inClusterConfig(env, saDir), 'the in-cluster service account');
  }

  const list = (env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f.trim() !== '');
  if (list.length > 0) return validated(fromFiles(list, '$KUBECONFIG'), `$KUBECONFIG (${list.join(path.delimiter)})`);

  const home = opts.homeDir ?? os.homedir();
  const def = path.join(home, '.kube', 'config');
  if (readable(def)) return validated(fromFiles([def], '~/.kube/config'), def);

  throw new KubeConfigError(
    `no Kubernetes configuration found: not in a cluster (KUBERNETES_SERVICE_HOST unset${opts.inCluster === false ? ' or in-cluster disabled' : ''}), ` +
      `$KUBECONFIG unset and ${def} missing; pass a kubeconfig`,
  );
}
