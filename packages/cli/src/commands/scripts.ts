/**
 * `wirescript scripts --source DIR`: pushes the `*.js` files of one or more
 * folders into the Kubeshark ConfigMap and keeps watching. Creating,
 * changing, renaming and deleting a file are all reflected. Kubeshark's
 * format is kept (SCRIPTING_SCRIPTS, SCRIPTING_ACTIVE_SCRIPTS); which entry
 * came from which file is recorded in an annotation of the ConfigMap, so
 * indices stay stable per file, a file deleted while the command was not
 * running is removed on the next run, and scripts created elsewhere (the
 * dashboard, another folder) are left alone. Writes are compare-and-set on
 * resourceVersion, retried on 409. A ConfigMap deleted and created again is
 * pushed again.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '@wirescript/config';
import {
  ACTIVE_SCRIPTS_KEY, DEFAULT_CONFIGMAP_NAME, SCRIPTS_KEY, fallbackTitle, parseActiveTitles, readScriptsFolder, watchScriptFolders,
  type FolderWatch,
} from '@wirescript/config-sync';
import { DEFAULT_MAX_SCRIPT_BYTES, ScriptValidationError, parseScript, scriptTitle } from '@wirescript/engine';
import { CoreV1Api, kubeConfigFrom, watchResource, type KubeConfig, type ResourceWatcher } from '@wirescript/kube';
import { CliError } from '../errors.ts';

export const SCRIPTS_HELP = `Usage: wirescript scripts --source DIR [--source DIR ...] [options]

Pushes the *.js files of the folders into the Kubeshark ConfigMap (keys
SCRIPTING_SCRIPTS and SCRIPTING_ACTIVE_SCRIPTS) and keeps watching: creating,
changing, renaming and deleting a file are all reflected. A script's title is
its first comment, else its file name. New scripts are active; an existing
script keeps its active state. Scripts that did not come from these folders
are left alone. One line per sync says what changed; Ctrl-C stops.

  --source DIR        A folder of *.js scripts (repeatable)
  --set scripting.source=DIR   Same, Kubeshark's spelling
  --once              Sync once and exit (0, or 1 if a script is not valid ES5)
  --kubeconfig PATH   Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --namespace NS      Namespace of the ConfigMap (default: the context's, else "default")
  --configmap NAME    ConfigMap name (default "${DEFAULT_CONFIGMAP_NAME}")
  --debounce TIME     Quiet time after file events before a sync (default 200ms)`;

/** Annotation recording which file each entry came from: JSON {"<index>": "<absolute path>"}. */
export const FILES_ANNOTATION = 'wirescript.io/script-files';

/** Writes tried before giving up on conflicts (409) in one sync. */
const MAX_WRITE_ATTEMPTS = 10;

export interface ScriptsOptions {
  sources: string[];
  once: boolean;
  kubeconfig?: string;
  namespace?: string;
  configMap: string;
  debounceMs: number;
}

export function parseScriptsArgs(argv: string[]): ScriptsOptions | 'help' {
  let v;
  try {
    v = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        source: { type: 'string', multiple: true },
        set: { type: 'string', multiple: true },
        once: { type: 'boolean' },
        kubeconfig: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        configmap: { type: 'string' },
        debounce: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    throw new CliError(`scripts: ${(err as Error).message} (see wirescript scripts --help)`);
  }
  if (v.help) return 'help';
  const sources = [...(v.source ?? [])];
  for (const s of v.set ?? []) {
    const eq = s.indexOf('=');
    const key = eq < 0 ? s : s.slice(0, eq);
    if (key !== 'scripting.source' || eq < 0 || s.slice(eq + 1) === '') {
      throw new CliError(`scripts: --set ${s}: only scripting.source=DIR is supported here`);
    }
    sources.push(s.slice(eq + 1));
  }
  if (sources.length === 0) throw new CliError('scripts: give the folder to sync with --source DIR (see wirescript scripts --help)');
  let debounceMs = 200;
  if (v.debounce !== undefined) {
    try {
      debounceMs = parseDuration(v.debounce);
    } catch {
      throw new CliError(`scripts: --debounce ${v.debounce}: give a duration such as 200ms or 1s`);
    }
  }
  return {
    sources: [...new Set(sources.map((s) => path.resolve(s)))],
    once: v.once === true,
    ...(v.kubeconfig !== undefined ? { kubeconfig: v.kubeconfig } : {}),
    ...(v.namespace !== undefined ? { namespace: v.namespace } : {}),
    configMap: v.configmap ?? DEFAULT_CONFIGMAP_NAME,
    debounceMs,
  };
}

// --- the merge (pure) --------------------------------------------------------

export interface LocalScript {
  /** Absolute path. */
  file: string;
  title: string;
  code: string;
}

export interface MergeInput {
  /** Current SCRIPTING_SCRIPTS, SCRIPTING_ACTIVE_SCRIPTS and FILES_ANNOTATION (undefined when absent). */
  scriptsJson: string | undefined;
  activeTitles: string | undefined;
  filesJson: string | undefined;
  /** The folders' scripts (titles unique, see dedupeTitles). */
  scripts: readonly LocalScript[];
  /** Absolute paths of the folders: an entry from a file of these folders that is gone is deleted. */
  sources: readonly string[];
}

export interface MergeResult {
  scriptsJson: string;
  activeTitles: string;
  filesJson: string;
  /** Anything to write. */
  changed: boolean;
  /** What changed, for the progress line: `+a.js "A"`, `~b.js`, `-c.js`, `a.js -> d.js`. */
  changes: string[];
  /** Scripts that could not be pushed (their title belongs to a script from elsewhere). */
  skipped: { file: string; message: string }[];
  /** Set when the existing SCRIPTING_SCRIPTS was not a JSON object and was replaced. */
  brokenJson: string | null;
}

type RawEntry = { title?: unknown; code?: unknown; active?: unknown; [k: string]: unknown };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The title config-sync gives the entry: its own, else the code's first comment, else `script-<index>`. */
function entryTitle(key: string, e: unknown): string {
  if (!isObject(e)) return fallbackTitle(key);
  if (typeof e.title === 'string' && e.title.trim() !== '') return e.title.trim();
  return typeof e.code === 'string' ? scriptTitle(e.code, fallbackTitle(key)) : fallbackTitle(key);
}

function inSources(file: string, sources: readonly string[]): boolean {
  return sources.includes(path.dirname(file));
}

/** Kubeshark's ConfigMap updated with the folders' scripts; other entries untouched. */
export function mergeFolderScripts(input: MergeInput): MergeResult {
  let raw: Record<string, unknown> = {};
  let brokenJson: string | null = null;
  if (input.scriptsJson !== undefined && input.scriptsJson.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(input.scriptsJson);
      if (isObject(parsed)) raw = parsed;
      else brokenJson = `${SCRIPTS_KEY} is not a JSON object`;
    } catch (err) {
      brokenJson = `${SCRIPTS_KEY} is not valid JSON (${(err as Error).message})`;
    }
  }
  let owners: Record<string, string> = {};
  try {
    const o: unknown = input.filesJson ? JSON.parse(input.filesJson) : {};
    if (isObject(o)) for (const [k, f] of Object.entries(o)) if (typeof f === 'string' && Object.hasOwn(raw, k)) owners[k] = f;
  } catch {
    owners = {};
  }
  const before = JSON.stringify(raw);
  const listed = new Set(parseActiveTitles(input.activeTitles));
  const isActive = (key: string) => {
    const e = raw[key];
    return (isObject(e) && e.active === true) || listed.has(entryTitle(key, e));
  };

  const byFile = new Map(input.scripts.map((s) => [s.file, s]));
  const keyOfFile = new Map<string, string>();
  for (const [k, f] of Object.entries(owners)) if (!keyOfFile.has(f)) keyOfFile.set(f, k);
  // Entries whose file is gone from our folders: released (a renamed file may take one over).
  const released = new Map<string, string>();
  for (const [k, f] of Object.entries(owners)) {
    if (inSources(f, input.sources) && !byFile.has(f)) released.set(k, f);
    else if (keyOfFile.get(f) !== k) released.set(k, f);
  }
  const activeOf = new Map<string, boolean>();
  for (const k of Object.keys(raw)) activeOf.set(k, isActive(k));

  const changes: string[] = [];
  const skipped: MergeResult['skipped'] = [];
  const nextOwners: Record<string, string> = {};
  for (const [k, f] of Object.entries(owners)) if (!released.has(k)) nextOwners[k] = f;
  let nextIndex = Math.max(-1, ...Object.keys(raw).filter((k) => /^\d+$/.test(k)).map(Number)) + 1;
  const name = (f: string) => path.basename(f);

  const assigned = new Map<string, string>();
  /** Files whose change is already described (new, renamed, taken over). */
  const described = new Set<string>();
  const pending: LocalScript[] = [];
  for (const s of input.scripts) {
    const k = keyOfFile.get(s.file);
    if (k !== undefined && !released.has(k)) assigned.set(s.file, k);
    else pending.push(s);
  }
  for (const s of pending) {
    // A renamed file takes over the entry of the file it replaces (same title): index and active state kept.
    let k = [...released.keys()].find((rk) => entryTitle(rk, raw[rk]) === s.title);
    if (k !== undefined) {
      changes.push(`${name(released.get(k)!)} -> ${name(s.file)}`);
      released.delete(k);
    } else {
      // An entry made elsewhere with the same title (the dashboard, an older push) is taken over.
      k = Object.keys(raw).find((rk) => owners[rk] === undefined && entryTitle(rk, raw[rk]) === s.title);
      if (k !== undefined) {
        changes.push(`${name(s.file)} took over script ${k} "${s.title}"`);
      } else {
        const clash = Object.keys(raw).find((rk) => !released.has(rk) && entryTitle(rk, raw[rk]) === s.title && nextOwners[rk] !== undefined && !byFile.has(nextOwners[rk]));
        if (clash !== undefined) {
          skipped.push({ file: s.file, message: `title "${s.title}" is already used by script ${clash} (from ${nextOwners[clash]}); not pushed` });
          continue;
        }
        k = String(nextIndex++);
        activeOf.set(k, true);
        changes.push(`+${name(s.file)} "${s.title}"`);
      }
    }
    described.add(s.file);
    assigned.set(s.file, k);
  }
  for (const [k, f] of released) {
    changes.push(`-${name(f)} "${entryTitle(k, raw[k])}"`);
    delete raw[k];
    activeOf.delete(k);
  }
  for (const [file, k] of assigned) {
    const s = byFile.get(file)!;
    const old = raw[k];
    const oldEntry: RawEntry = isObject(old) ? old : {};
    const active = activeOf.get(k) ?? true;
    if (!described.has(file) && (oldEntry.code !== s.code || oldEntry.title !== s.title)) changes.push(`~${name(file)} "${s.title}"`);
    raw[k] = { ...oldEntry, title: s.title, code: s.code, active };
    activeOf.set(k, active);
    nextOwners[k] = file;
  }
  // Keys in index order, as Kubeshark writes them.
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(raw).sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : 1))) sorted[k] = raw[k];
  const activeTitles = Object.keys(sorted).filter((k) => activeOf.get(k)).map((k) => entryTitle(k, sorted[k])).join(',');
  const ownersSorted: Record<string, string> = {};
  for (const k of Object.keys(nextOwners).sort((a, b) => Number(a) - Number(b))) ownersSorted[k] = nextOwners[k];
  const scriptsJson = JSON.stringify(sorted);
  const filesJson = JSON.stringify(ownersSorted);
  const changed = brokenJson !== null || scriptsJson !== before || activeTitles !== (input.activeTitles ?? '') || filesJson !== (input.filesJson ?? '{}');
  return { scriptsJson, activeTitles, filesJson, changed, changes, skipped, brokenJson };
}

// --- reading the folders -----------------------------------------------------

export interface LocalRead {
  scripts: LocalScript[];
  /** Problems per file (unreadable, too large, not valid ES5, duplicate title). */
  problems: Map<string, string>;
  /** Files with a problem that are still pushed (invalid ES5: config-sync reports them and keeps them inactive). */
  invalid: number;
}

/** Reads every folder; a file is still pushed when it is not valid ES5 (it is reported), not when it cannot be read. */
export async function readLocalScripts(sources: readonly string[]): Promise<LocalRead> {
  const out: LocalRead = { scripts: [], problems: new Map(), invalid: 0 };
  const titles = new Map<string, string>();
  for (const dir of sources) {
    const contents = await readScriptsFolder(dir, { maxBytes: DEFAULT_MAX_SCRIPT_BYTES });
    for (const p of contents.problems) out.problems.set(p.file, p.message);
    for (const s of contents.scripts) {
      const other = titles.get(s.title);
      if (other !== undefined) {
        out.problems.set(s.file, `title "${s.title}" is already used by ${other}; not pushed (titles must be unique)`);
        continue;
      }
      titles.set(s.title, s.file);
      try {
        parseScript(s.code, { fallbackTitle: s.name });
      } catch (err) {
        if (!(err instanceof ScriptValidationError)) throw err;
        const prefix = `${err.title}:${err.line}:${err.column}: `;
        out.problems.set(s.file, `${err.line}:${err.column}: ${err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message} (pushed; it will not run until fixed)`);
        out.invalid++;
      }
      out.scripts.push({ file: s.file, title: s.title, code: s.code });
    }
  }
  return out;
}

// --- the Kubernetes side ------------------------------------------------------

/** A Kubernetes API call failed (HTTP status, or the API was not reachable: status 0). */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly status: number;
  constructor(message: string, status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; code?: string } | undefined;
  let msg = e?.message ?? String(err);
  for (let i = 0; i < 5 && e?.cause; i++) {
    e = e.cause as typeof e;
    if (e?.message) msg = e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message;
  }
  return msg;
}

/** One clear line for a client-node error: the API's own message for an HTTP error, the network reason otherwise. */
export function kubeError(err: unknown, what: string, server: string): KubeApiError {
  const e = err as { code?: unknown; body?: unknown };
  if (typeof e?.code === 'number' && e.code >= 100) {
    let body = e.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // plain text body
      }
    }
    const apiMessage = isObject(body) && typeof body.message === 'string' ? body.message : typeof body === 'string' && body.trim() !== '' ? body.trim().slice(0, 200) : `HTTP ${e.code}`;
    return new KubeApiError(`${what}: ${apiMessage} (HTTP ${e.code})`, e.code, { cause: err });
  }
  return new KubeApiError(`cannot reach the Kubernetes API at ${server}: ${rootMessage(err)}`, 0, { cause: err });
}

interface ConfigMapObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  [k: string]: unknown;
}

export interface PusherOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  configMap: string;
  sources: string[];
  out: (line: string) => void;
  err: (line: string) => void;
}

export interface SyncOutcome {
  /** Something was written. */
  wrote: boolean;
  /** The ConfigMap is missing and was not created (it was deleted while watching). */
  missing: boolean;
  /** Scripts that are not valid ES5 (pushed, reported). */
  invalid: number;
}

/** Pushes the folders into the ConfigMap; one sync at a time. */
export class ConfigMapPusher {
  /** uid of the ConfigMap we last read or wrote ('' when it was missing). */
  uid: string | null = null;
  private readonly api: CoreV1Api;
  private readonly o: PusherOptions;
  private readonly server: string;
  private readonly where: string;
  private reported = new Map<string, string>();

  constructor(o: PusherOptions) {
    this.o = o;
    this.api = o.kubeConfig.makeApiClient(CoreV1Api);
    this.server = o.kubeConfig.getCurrentCluster()?.server ?? '(no server in the kubeconfig)';
    this.where = `${o.namespace}/${o.configMap}`;
  }

  /** "3 scripts of the folder" / "1 script of the 2 folders". */
  private count(n: number): string {
    const f = this.o.sources.length;
    return `${n} script${n === 1 ? '' : 's'} of the ${f === 1 ? 'folder' : `${f} folders`}`;
  }

  private async read(): Promise<ConfigMapObject | null> {
    try {
      return (await this.api.readNamespacedConfigMap({ name: this.o.configMap, namespace: this.o.namespace })) as ConfigMapObject;
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return null;
      throw kubeError(err, `reading ConfigMap ${this.where}`, this.server);
    }
  }

  private reportProblems(problems: Map<string, string>): void {
    for (const [file, msg] of problems) {
      if (this.reported.get(file) === msg) continue;
      this.o.err(`${path.basename(file)}: ${msg}`);
    }
    for (const file of this.reported.keys()) if (!problems.has(file)) this.o.err(`${path.basename(file)}: fixed`);
    this.reported = new Map(problems);
  }

  /**
   * One sync: read the folders and the ConfigMap, merge, write if anything
   * changed (compare-and-set, re-read and retried on 409). `create`: create
   * the ConfigMap when it is missing (at start; not after a deletion).
   */
  async sync(opts: { create: boolean; quietWhenUnchanged: boolean }): Promise<SyncOutcome> {
    const local = await readLocalScripts(this.o.sources);
    this.reportProblems(local.problems);
    for (let attempt = 1; ; attempt++) {
      const cm = await this.read();
      if (cm === null && !opts.create) {
        this.uid = '';
        return { wrote: false, missing: true, invalid: local.invalid };
      }
      const data = cm?.data ?? {};
      const m = mergeFolderScripts({
        scriptsJson: data[SCRIPTS_KEY],
        activeTitles: data[ACTIVE_SCRIPTS_KEY],
        filesJson: cm?.metadata?.annotations?.[FILES_ANNOTATION],
        scripts: local.scripts,
        sources: this.o.sources,
      });
      for (const s of m.skipped) {
        if (this.reported.get(s.file) !== s.message) this.o.err(`${path.basename(s.file)}: ${s.message}`);
        this.reported.set(s.file, s.message);
      }
      const ours = local.scripts.length - m.skipped.length;
      if (cm !== null && !m.changed) {
        this.uid = cm.metadata?.uid ?? '';
        if (!opts.quietWhenUnchanged) this.o.out(`${stamp()} up to date: ConfigMap ${this.where} has the ${this.count(ours)}`);
        return { wrote: false, missing: false, invalid: local.invalid };
      }
      if (m.brokenJson) this.o.err(`ConfigMap ${this.where}: ${m.brokenJson}; replacing it with the folder's scripts`);
      try {
        let written: ConfigMapObject;
        if (cm === null) {
          written = (await this.api.createNamespacedConfigMap({
            namespace: this.o.namespace,
            body: {
              apiVersion: 'v1', kind: 'ConfigMap',
              metadata: { name: this.o.configMap, namespace: this.o.namespace, annotations: { [FILES_ANNOTATION]: m.filesJson } },
              data: { [SCRIPTS_KEY]: m.scriptsJson, [ACTIVE_SCRIPTS_KEY]: m.activeTitles },
            },
          })) as ConfigMapObject;
        } else {
          // Everything else in the ConfigMap (Kubeshark keeps its whole configuration there) is kept as read.
          const body = {
            ...cm,
            metadata: { ...cm.metadata, annotations: { ...(cm.metadata?.annotations ?? {}), [FILES_ANNOTATION]: m.filesJson } },
            data: { ...data, [SCRIPTS_KEY]: m.scriptsJson, [ACTIVE_SCRIPTS_KEY]: m.activeTitles },
          };
          written = (await this.api.replaceNamespacedConfigMap({ name: this.o.configMap, namespace: this.o.namespace, body: body as never })) as ConfigMapObject;
        }
        this.uid = written.metadata?.uid ?? '';
        const what = m.changes.length > 0 ? m.changes.join(', ') : 'bookkeeping updated';
        this.o.out(`${stamp()} ${cm === null ? 'created' : 'synced'} ConfigMap ${this.where} (${this.count(ours)}): ${what}`);
        return { wrote: true, missing: false, invalid: local.invalid };
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        // 409: someone else wrote since we read (or created it first): read again and redo the merge.
        if (code === 409 && attempt < MAX_WRITE_ATTEMPTS) {
          this.o.err(`ConfigMap ${this.where} changed while we wrote (409 Conflict); retrying (${attempt}/${MAX_WRITE_ATTEMPTS - 1})`);
          await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)));
          continue;
        }
        throw kubeError(err, `writing ConfigMap ${this.where}`, this.server);
      }
    }
  }
}

function stamp(): string {
  return new Date().toTimeString().slice(0, 8);
}

// --- the command ---------------------------------------------------------------

export interface ScriptsIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
  /** Aborting stops the watch (what Ctrl-C does), for tests. */
  signal?: AbortSignal;
}

function namespaceOf(kc: KubeConfig): string | undefined {
  try {
    return kc.getContextObject(kc.getCurrentContext())?.namespace ?? undefined;
  } catch {
    return undefined;
  }
}

export async function scriptsCommand(argv: string[], io: ScriptsIo): Promise<number> {
  const opts = parseScriptsArgs(argv);
  if (opts === 'help') {
    io.stdout.write(`${SCRIPTS_HELP}\n`);
    return 0;
  }
  for (const dir of opts.sources) {
    let ok = false;
    try {
      ok = (await stat(dir)).isDirectory();
    } catch {
      throw new CliError(`scripts: source folder ${dir} does not exist`, 1);
    }
    if (!ok) throw new CliError(`scripts: source ${dir} is not a folder`, 1);
  }
  let kc: KubeConfig;
  try {
    kc = opts.kubeconfig !== undefined ? kubeConfigFrom({ kubeconfig: opts.kubeconfig }) : kubeConfigFrom(io.env ? { env: io.env } : {});
  } catch (err) {
    throw new CliError(`scripts: ${(err as Error).message}`, 1, { cause: err });
  }
  const namespace = opts.namespace ?? namespaceOf(kc) ?? 'default';
  const out = (line: string) => io.stdout.write(`${line}\n`);
  const err = (line: string) => io.stderr.write(`wirescript scripts: ${line}\n`);
  const pusher = new ConfigMapPusher({ kubeConfig: kc, namespace, configMap: opts.configMap, sources: opts.sources, out, err });

  let first: SyncOutcome;
  try {
    first = await pusher.sync({ create: true, quietWhenUnchanged: false });
  } catch (e) {
    throw new CliError(`scripts: ${(e as Error).message}`, 1, { cause: e });
  }
  if (opts.once) return first.invalid > 0 ? 1 : 0;
  return watchAndSync(pusher, opts, namespace, kc, io, out, err);
}

async function watchAndSync(
  pusher: ConfigMapPusher, opts: ScriptsOptions, namespace: string, kc: KubeConfig, io: ScriptsIo,
  out: (line: string) => void, err: (line: string) => void,
): Promise<number> {
  let stopping = false;
  let running: Promise<void> | null = null;
  let again = false;
  let retryTimer: NodeJS.Timeout | null = null;
  let failures = 0;
  let lastError = '';
  const run = () => {
    if (stopping) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        try {
          const r = await pusher.sync({ create: false, quietWhenUnchanged: true });
          if (r.missing && lastError !== 'missing') out(`${stamp()} ConfigMap ${namespace}/${opts.configMap} is gone; the scripts are pushed again when it is created`);
          lastError = r.missing ? 'missing' : '';
          failures = 0;
        } catch (e) {
          failures++;
          const msg = (e as Error).message;
          if (msg !== lastError) err(`${msg}; retrying`);
          lastError = msg;
          if (!retryTimer && !stopping) {
            retryTimer = setTimeout(() => {
              retryTimer = null;
              run();
            }, Math.min(30_000, 500 * 2 ** Math.min(failures, 6)));
          }
        }
      } while (again && !stopping);
      running = null;
    })();
  };

  const folders: FolderWatch = watchScriptFolders(opts.sources, run, {
    debounceMs: opts.debounceMs,
    onError: (_dir, e) => err(e.message),
  });
  // A file changed between the first push and the watch being armed sends no event: read once more now.
  run();
  // The ConfigMap itself: deleted and created again (a reinstall) means push again.
  const seen = (uid: string) => {
    if (uid !== pusher.uid) run();
  };
  const cmWatch: ResourceWatcher = watchResource<ConfigMapObject & { metadata?: { resourceVersion?: string } }>(kc, {
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
    fieldSelector: `metadata.name=${opts.configMap}`,
    onSync: (items) => seen(items.find((i) => i.metadata?.name === opts.configMap)?.metadata?.uid ?? ''),
    onEvent: (e) => {
      if (e.object.metadata?.name !== opts.configMap) return;
      seen(e.type === 'DELETED' ? '' : (e.object.metadata?.uid ?? ''));
    },
    onError: (e) => {
      if (e.message !== lastError) err(`watching ConfigMap ${namespace}/${opts.configMap}: ${e.message}`);
    },
  });
  out(`${stamp()} watching ${opts.sources.join(', ')} (Ctrl-C to stop)`);

  await new Promise<void>((resolve) => {
    const done = () => {
      io.signal?.removeEventListener('abort', done);
      process.removeListener('SIGINT', done);
      process.removeListener('SIGTERM', done);
      resolve();
    };
    if (io.signal?.aborted) return resolve();
    io.signal?.addEventListener('abort', done, { once: true });
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  stopping = true;
  folders.stop();
  if (retryTimer) clearTimeout(retryTimer);
  await cmWatch.stop().catch(() => {});
  if (running) await Promise.race([running, new Promise((r) => setTimeout(r, 5000).unref())]);
  out(`${stamp()} stopped`);
  return 0;
}
