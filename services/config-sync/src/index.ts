export { ConfigSync, SERVICE, type ConfigSyncCounters, type ConfigSyncDeps } from './sync.ts';
export { configSyncConfig, defaultNamespace, IN_CLUSTER_NAMESPACE_FILE, type ConfigSyncConfig } from './config.ts';
export { createSource } from './service.ts';
export { DirSource, KubeSource, type ScriptSource, type SourceSnapshot, type SourceLog, type KubeSourceOptions, type DirSourceOptions } from './sources.ts';
export {
  ACTIVE_SCRIPTS_KEY, DEFAULT_CONFIGMAP_NAME, DEFAULT_SECRET_NAME, ENV_KEY, SCRIPTS_KEY,
  fallbackTitle, parseActiveTitles, parseScriptingEnv, parseStoredScripts, secretValue, serializeStoredScripts,
  type EntryProblem, type ParsedScripts, type StoredScript,
} from './format.ts';
export { evaluateScripts, describeDiagnostic, sameEnv, sameScripts, type Evaluation, type ScriptDiagnostic, type SetScript } from './evaluate.ts';
export { readScriptsFolder, watchScriptFolders, isScriptFileName, type FolderContents, type FolderScript, type FolderProblem, type FolderWatch, type FolderWatchOptions } from './folder.ts';
export { ConfigSyncStartError, EnvJsonError, ScriptSetWriteError, ScriptsFolderError, ScriptsJsonError } from './errors.ts';
