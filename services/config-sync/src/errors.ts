/** Named errors of config-sync and of the Kubeshark script storage format. */

/** SCRIPTING_SCRIPTS is not valid JSON, or not an object of entries. The last good set stays active. */
export class ScriptsJsonError extends Error {
  override readonly name = 'ScriptsJsonError';
}

/**
 * SCRIPTING_ENV is not a JSON object. The message never quotes the content
 * (it holds secrets) and there is deliberately no `cause`: JSON.parse
 * messages quote the text around the fault.
 */
export class EnvJsonError extends Error {
  override readonly name = 'EnvJsonError';
}

/** The scripts folder is missing or unreadable. */
export class ScriptsFolderError extends Error {
  override readonly name = 'ScriptsFolderError';
}

/** Writing the script set to the KV bucket failed. */
export class ScriptSetWriteError extends Error {
  override readonly name = 'ScriptSetWriteError';
}

/** config-sync could not start (bad source, NATS, Kubernetes configuration). */
export class ConfigSyncStartError extends Error {
  override readonly name = 'ConfigSyncStartError';
}
