/**
 * Kubeshark's script storage, read and written exactly as Kubeshark does:
 *
 * - ConfigMap (default `kubeshark-config-map`), key `SCRIPTING_SCRIPTS`: a
 *   JSON object `{"<index>": {"title": "...", "code": "...", "active": bool}}`;
 * - same ConfigMap, key `SCRIPTING_ACTIVE_SCRIPTS`: comma-joined titles of
 *   the scripts that are active (a script is active when its entry says so
 *   or its title is listed);
 * - Secret (default `kubeshark-secret`), key `SCRIPTING_ENV`: a JSON object
 *   of strings, the scripts' `env.*`. Secret values never appear in an error
 *   message, a log line or a status.
 *
 * Other keys of the ConfigMap (Kubeshark keeps its whole configuration there)
 * are never touched.
 */
import { scriptTitle } from '@wirescript/engine';
import { EnvJsonError, ScriptsJsonError } from './errors.ts';

export const SCRIPTS_KEY = 'SCRIPTING_SCRIPTS';
export const ACTIVE_SCRIPTS_KEY = 'SCRIPTING_ACTIVE_SCRIPTS';
export const ENV_KEY = 'SCRIPTING_ENV';
export const DEFAULT_CONFIGMAP_NAME = 'kubeshark-config-map';
export const DEFAULT_SECRET_NAME = 'kubeshark-secret';

/** Largest index a script can have (ScriptSet.Script.index is an int32). */
const MAX_INDEX = 2 ** 31 - 1;

/** One entry of SCRIPTING_SCRIPTS, with `active` resolved against SCRIPTING_ACTIVE_SCRIPTS. */
export interface StoredScript {
  index: number;
  title: string;
  code: string;
  active: boolean;
}

/** An entry that could not be used at all (bad key, not an object, no code, duplicate title); the others go on. */
export interface EntryProblem {
  /** The entry's key as written in SCRIPTING_SCRIPTS. */
  key: string;
  /** The index when the key is one, else -1. */
  index: number;
  /** The title when known, else `script-<key>`. */
  title: string;
  message: string;
}

export interface ParsedScripts {
  /** Usable entries, ordered by index. */
  scripts: StoredScript[];
  problems: EntryProblem[];
}

/** Default title of a script without a title and without a comment. */
export function fallbackTitle(index: number | string): string {
  return `script-${index}`;
}

/** `"a, b,,c"` -> `["a", "b", "c"]`. */
export function parseActiveTitles(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** One line for a JSON.parse failure; script code is not secret, so quoting it is fine. */
function jsonMessage(err: unknown): string {
  return String((err as Error)?.message ?? err).replace(/\s+/g, ' ');
}

/**
 * Reads SCRIPTING_SCRIPTS and SCRIPTING_ACTIVE_SCRIPTS. A missing or blank
 * SCRIPTING_SCRIPTS is no scripts. Throws ScriptsJsonError when it is not a
 * JSON object; a bad entry is a problem of that entry only.
 */
export function parseStoredScripts(scriptsJson: string | undefined, activeTitles?: string): ParsedScripts {
  const out: ParsedScripts = { scripts: [], problems: [] };
  if (scriptsJson === undefined || scriptsJson.trim() === '') return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(scriptsJson);
  } catch (err) {
    throw new ScriptsJsonError(`${SCRIPTS_KEY} is not valid JSON: ${jsonMessage(err)}`, { cause: err });
  }
  if (!isObject(parsed)) {
    throw new ScriptsJsonError(`${SCRIPTS_KEY} must be a JSON object {"<index>": {"title", "code", "active"}}, got ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : typeof parsed}`);
  }
  const listed = new Set(parseActiveTitles(activeTitles));
  const entries: StoredScript[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    const index = /^\d+$/.test(key) && Number(key) <= MAX_INDEX ? Number(key) : -1;
    const rawTitle = isObject(value) && typeof value.title === 'string' ? value.title.trim() : '';
    const problem = (message: string, title = rawTitle || fallbackTitle(key)) => out.problems.push({ key, index, title, message });
    if (index < 0) {
      problem(`entry key "${key}" is not an index (a whole number from 0 to ${MAX_INDEX})`);
      continue;
    }
    if (!isObject(value)) {
      problem(`entry "${key}" must be an object {"title", "code", "active"}`);
      continue;
    }
    if (typeof value.code !== 'string') {
      problem(`entry "${key}" has no "code" string`);
      continue;
    }
    const title = rawTitle !== '' ? rawTitle : scriptTitle(value.code, fallbackTitle(index));
    entries.push({ index, title, code: value.code, active: value.active === true || listed.has(title) });
  }
  entries.sort((a, b) => a.index - b.index);
  // Titles are unique in a set (SCRIPTING_ACTIVE_SCRIPTS refers to scripts by title): the first one wins.
  const byTitle = new Map<string, number>();
  for (const s of entries) {
    const first = byTitle.get(s.title);
    if (first !== undefined) {
      out.problems.push({ key: String(s.index), index: s.index, title: s.title, message: `title "${s.title}" is already used by script ${first}; this one is skipped (titles must be unique)` });
      continue;
    }
    byTitle.set(s.title, s.index);
    out.scripts.push(s);
  }
  return out;
}

/** The two ConfigMap values for these scripts, as Kubeshark writes them (compact JSON, keys in index order). */
export function serializeStoredScripts(scripts: readonly StoredScript[]): { [SCRIPTS_KEY]: string; [ACTIVE_SCRIPTS_KEY]: string } {
  const sorted = [...scripts].sort((a, b) => a.index - b.index);
  const obj: Record<string, { title: string; code: string; active: boolean }> = {};
  for (const s of sorted) obj[String(s.index)] = { title: s.title, code: s.code, active: s.active };
  return {
    [SCRIPTS_KEY]: JSON.stringify(obj),
    [ACTIVE_SCRIPTS_KEY]: sorted.filter((s) => s.active).map((s) => s.title).join(','),
  };
}

/**
 * Reads SCRIPTING_ENV: a JSON object whose values are strings (numbers and
 * booleans are taken as their text, objects and arrays as JSON, null as "").
 * Missing or blank: no env. Throws EnvJsonError, which never quotes the
 * content, when it is not a JSON object.
 */
export function parseScriptingEnv(json: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  if (json === undefined || json.trim() === '') return env;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // No detail and no cause on purpose: JSON.parse messages quote the secret text.
    throw new EnvJsonError(`${ENV_KEY} is not valid JSON (content not shown: it holds secrets)`);
  }
  if (!isObject(parsed)) throw new EnvJsonError(`${ENV_KEY} must be a JSON object of strings, got ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : typeof parsed}`);
  for (const [k, v] of Object.entries(parsed)) {
    env[k] = typeof v === 'string' ? v : v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return env;
}

/** A Secret's `data` value (base64) as text; undefined when the key is absent. */
export function secretValue(data: Readonly<Record<string, string>> | undefined, key: string): string | undefined {
  const b64 = data?.[key];
  if (b64 === undefined) return undefined;
  return Buffer.from(b64, 'base64').toString('utf8');
}
