/** Builds the script source the configuration asks for. */
import path from 'node:path';
import { kubeConfigFrom } from '@wirescript/kube';
import type { Logger } from '@wirescript/script-host';
import type { ConfigSyncConfig } from './config.ts';
import { ConfigSyncStartError } from './errors.ts';
import { parseScriptingEnv } from './format.ts';
import { DirSource, KubeSource, type ScriptSource, type SourceLog } from './sources.ts';

/** SCRIPTS_DIR set: the folder; else the ConfigMap and the Secret through the Kubernetes API. */
export function createSource(config: ConfigSyncConfig, log: Logger): ScriptSource {
  const sourceLog: SourceLog = (level, message) => log[level](message);
  if (config.scriptsDir !== undefined) {
    return new DirSource({
      dir: config.scriptsDir,
      // Already checked to be a JSON object by the config loader; values become strings.
      env: parseScriptingEnv(config.scriptingEnv === undefined ? undefined : JSON.stringify(config.scriptingEnv)),
      maxBytes: config.maxScriptBytes,
      debounceMs: config.syncDebounceMs,
      log: sourceLog,
    });
  }
  if (config.scriptingEnv !== undefined) log.warn('SCRIPTING_ENV is ignored without SCRIPTS_DIR: with Kubernetes the env comes from the Secret');
  let kubeConfig;
  try {
    const kc = config.kubeconfig;
    // KUBECONFIG may be a path list (merged, as kubectl does); a set KUBECONFIG wins over the in-cluster account.
    kubeConfig = kc === undefined ? kubeConfigFrom({})
      : kc.includes(path.delimiter) ? kubeConfigFrom({ inCluster: false, env: { KUBECONFIG: kc } })
      : kubeConfigFrom({ kubeconfig: kc });
  } catch (err) {
    throw new ConfigSyncStartError(`cannot set up the Kubernetes client (KUBECONFIG or the in-cluster service account): ${(err as Error).message}`, { cause: err });
  }
  return new KubeSource({
    kubeConfig,
    namespace: config.namespace,
    configMapName: config.configMapName,
    secretName: config.secretName,
    backoff: { initialMs: config.watchBackoffMinMs, maxMs: config.watchBackoffMaxMs },
    log: sourceLog,
  });
}
