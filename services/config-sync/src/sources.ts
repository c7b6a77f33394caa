/**
 * Where scripts come from: the Kubernetes ConfigMap + Secret (list + watch,
 * resumed from resourceVersion, re-listed on 410 Gone, reconnected with
 * backoff; all in @wirescript/kube), or a local folder of `*.js` files
 * (watched). A source keeps the latest raw state and says when it changed;
 * `snapshot()` parses it. Parsing errors are returned, not thrown, so the
 * sync keeps the last good part (scripts and env independently).
 */
import { watchResource, type KubeConfig, type ResourceWatcher } from '@wirescript/kube';
import { ScriptsFolderError } from './errors.ts';
import { ACTIVE_SCRIPTS_KEY, ENV_KEY, SCRIPTS_KEY, parseScriptingEnv, parseStoredScripts, secretValue, type EntryProblem, type StoredScript } from './format.ts';
import { readScriptsFolder, watchScriptFolders, type FolderWatch } from './folder.ts';

export type ScriptsPart = { ok: true; scripts: StoredScript[]; problems: EntryProblem[]; note?: string } | { ok: false; error: Error };
export type EnvPart = { ok: true; env: Record<string, string>; note?: string } | { ok: false; error: Error };

export interface SourceSnapshot {
  scripts: ScriptsPart;
  env: EnvPart;
}

export interface ScriptSource {
  /** For humans and ScriptSet.source: "configmap:<ns>/<name>" or "dir:<path>". */
  readonly description: string;
  /** Checks what can be checked before anything starts (a missing folder); throws a clear error. */
  preflight(): Promise<void>;
  /** Starts following the source; `onChange` is called after every change (and once the first state is known). */
  start(onChange: () => void): Promise<void>;
  /** Resolves once the whole state has been read once. */
  readonly ready: Promise<void>;
  /** The current state, parsed. */
  snapshot(): Promise<SourceSnapshot>;
  /** Counters for the replica status. */
  counters(): Record<string, number>;
  /** Why it is not ready yet (for /readyz), or null. */
  pending(): string | null;
  stop(): Promise<void>;
}

/** What the source reports besides changes: watch errors, a folder gone. Never secret. */
export type SourceLog = (level: 'info' | 'warn' | 'error', message: string) => void;

interface KubeObjectLike {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string };
  data?: Record<string, string>;
}

export interface KubeSourceOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  configMapName: string;
  secretName: string;
  backoff: { initialMs: number; maxMs: number };
  log: SourceLog;
}

/** The ConfigMap (SCRIPTING_SCRIPTS, SCRIPTING_ACTIVE_SCRIPTS) and the Secret (SCRIPTING_ENV). */
export class KubeSource implements ScriptSource {
  readonly description: string;
  readonly ready: Promise<void>;
  private readonly opts: KubeSourceOptions;
  private configMap: KubeObjectLike | null = null;
  private secret: KubeObjectLike | null = null;
  private cmWatch: ResourceWatcher | null = null;
  private secretWatch: ResourceWatcher | null = null;
  private cmSynced = false;
  private secretSynced = false;
  private markReady!: () => void;

  constructor(opts: KubeSourceOptions) {
    this.opts = opts;
    this.description = `configmap:${opts.namespace}/${opts.configMapName}`;
    this.ready = new Promise((r) => (this.markReady = r));
  }

  async preflight(): Promise<void> {
    // Nothing to check without talking to the API, and an API that is down now may be up in a moment: the watches retry.
  }

  async start(onChange: () => void): Promise<void> {
    const o = this.opts;
    const base = `/api/v1/namespaces/${encodeURIComponent(o.namespace)}`;
    const synced = () => {
      if (this.cmSynced && this.secretSynced) this.markReady();
    };
    this.cmWatch = watchResource<KubeObjectLike>(o.kubeConfig, {
      path: `${base}/configmaps`,
      fieldSelector: `metadata.name=${o.configMapName}`,
      backoff: o.backoff,
      onSync: (items) => {
        this.configMap = items.find((i) => i.metadata?.name === o.configMapName) ?? null;
        this.cmSynced = true;
        synced();
        onChange();
      },
      onEvent: (e) => {
        if (e.object.metadata?.name !== o.configMapName) return;
        this.configMap = e.type === 'DELETED' ? null : e.object;
        onChange();
      },
      onError: (err) => o.log('warn', `ConfigMap ${o.namespace}/${o.configMapName}: ${err.message}`),
    });
    this.secretWatch = watchResource<KubeObjectLike>(o.kubeConfig, {
      path: `${base}/secrets`,
      fieldSelector: `metadata.name=${o.secretName}`,
      backoff: o.backoff,
      onSync: (items) => {
        this.secret = items.find((i) => i.metadata?.name === o.secretName) ?? null;
        this.secretSynced = true;
        synced();
        onChange();
      },
      onEvent: (e) => {
        if (e.object.metadata?.name !== o.secretName) return;
        this.secret = e.type === 'DELETED' ? null : e.object;
        onChange();
      },
      // The watcher's errors name the request, never the Secret's data.
      onError: (err) => o.log('warn', `Secret ${o.namespace}/${o.secretName}: ${err.message}`),
    });
  }

  pending(): string | null {
    const o = this.opts;
    if (!this.cmSynced) return `ConfigMap ${o.namespace}/${o.configMapName} not listed yet`;
    if (!this.secretSynced) return `Secret ${o.namespace}/${o.secretName} not listed yet`;
    return null;
  }

  async snapshot(): Promise<SourceSnapshot> {
    const o = this.opts;
    let scripts: ScriptsPart;
    if (this.configMap === null) {
      scripts = { ok: true, scripts: [], problems: [], note: `ConfigMap ${o.namespace}/${o.configMapName} not found: no scripts` };
    } else {
      try {
        const data = this.configMap.data ?? {};
        scripts = { ok: true, ...parseStoredScripts(data[SCRIPTS_KEY], data[ACTIVE_SCRIPTS_KEY]) };
      } catch (err) {
        scripts = { ok: false, error: err as Error };
      }
    }
    let env: EnvPart;
    if (this.secret === null) {
      env = { ok: true, env: {}, note: `Secret ${o.namespace}/${o.secretName} not found: no script env` };
    } else {
      try {
        env = { ok: true, env: parseScriptingEnv(secretValue(this.secret.data, ENV_KEY)) };
      } catch (err) {
        env = { ok: false, error: err as Error };
      }
    }
    return { scripts, env };
  }

  counters(): Record<string, number> {
    const a = this.cmWatch?.stats;
    const b = this.secretWatch?.stats;
    const sum = (k: 'lists' | 'watches' | 'events' | 'reconnects' | 'gone410' | 'errors') => (a?.[k] ?? 0) + (b?.[k] ?? 0);
    return {
      kube_lists: sum('lists'), kube_watches: sum('watches'), kube_events: sum('events'),
      kube_reconnects: sum('reconnects'), kube_gone_410: sum('gone410'), kube_errors: sum('errors'),
    };
  }

  async stop(): Promise<void> {
    await Promise.all([this.cmWatch?.stop(), this.secretWatch?.stop()]);
  }
}

export interface DirSourceOptions {
  dir: string;
  /** The scripts' env (SCRIPTING_ENV of the config), fixed for the life of the process. */
  env: Record<string, string>;
  maxBytes: number;
  debounceMs: number;
  log: SourceLog;
  /** How often the folder's identity is checked (ms). */
  checkMs?: number;
}

/** A folder of `*.js` files: every file is a script, active; index stable per file name while the service runs. */
export class DirSource implements ScriptSource {
  readonly description: string;
  readonly ready: Promise<void>;
  private readonly opts: DirSourceOptions;
  private watch: FolderWatch | null = null;
  private readonly indexByName = new Map<string, number>();
  private nextIndex = 0;
  private readonly stats = { folder_reads: 0, folder_errors: 0 };
  private markReady!: () => void;

  constructor(opts: DirSourceOptions) {
    this.opts = opts;
    this.description = `dir:${opts.dir}`;
    this.ready = new Promise((r) => (this.markReady = r));
  }

  async preflight(): Promise<void> {
    // A missing folder at start is a configuration error: say so now.
    await readScriptsFolder(this.opts.dir, { maxBytes: this.opts.maxBytes });
  }

  async start(onChange: () => void): Promise<void> {
    this.watch = watchScriptFolders([this.opts.dir], onChange, {
      debounceMs: Math.min(this.opts.debounceMs, 50),
      checkMs: this.opts.checkMs,
      onError: (_dir, err) => this.opts.log('warn', err.message),
    });
    this.markReady();
    onChange();
  }

  pending(): string | null {
    return null;
  }

  async snapshot(): Promise<SourceSnapshot> {
    const env: EnvPart = { ok: true, env: { ...this.opts.env } };
    let contents;
    try {
      contents = await readScriptsFolder(this.opts.dir, { maxBytes: this.opts.maxBytes });
      this.stats.folder_reads++;
    } catch (err) {
      this.stats.folder_errors++;
      return { scripts: { ok: false, error: err instanceof ScriptsFolderError ? err : new ScriptsFolderError((err as Error).message, { cause: err }) }, env };
    }
    const present = new Set([...contents.scripts.map((s) => s.name), ...contents.problems.map((p) => p.name)]);
    for (const name of [...this.indexByName.keys()]) if (!present.has(name)) this.indexByName.delete(name);
    const indexOf = (name: string) => {
      let i = this.indexByName.get(name);
      if (i === undefined) {
        i = this.nextIndex++;
        this.indexByName.set(name, i);
      }
      return i;
    };
    const scripts: StoredScript[] = [];
    const problems: EntryProblem[] = [];
    const byTitle = new Map<string, string>();
    // File-name order, so the first of two files with the same title is the one that runs.
    const all = [...contents.scripts.map((s) => ({ ...s, problem: undefined as string | undefined })), ...contents.problems.map((p) => ({ ...p, code: '', problem: p.message }))]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const f of all) {
      const index = indexOf(f.name);
      if (f.problem !== undefined) {
        problems.push({ key: f.name, index, title: f.title, message: `${f.name}: ${f.problem}` });
        continue;
      }
      const other = byTitle.get(f.title);
      if (other !== undefined) {
        problems.push({ key: f.name, index, title: f.title, message: `${f.name}: title "${f.title}" is already used by ${other}; this one is skipped (titles must be unique)` });
        continue;
      }
      byTitle.set(f.title, f.name);
      scripts.push({ index, title: f.title, code: f.code, active: true });
    }
    scripts.sort((a, b) => a.index - b.index);
    return { scripts: { ok: true, scripts, problems }, env };
  }

  counters(): Record<string, number> {
    return { ...this.stats };
  }

  async stop(): Promise<void> {
    this.watch?.stop();
  }
}
