/**
 * A folder of `*.js` scripts: read it, and watch it (debounced) so that
 * creating, changing, renaming and deleting a file are all noticed. Used by
 * config-sync's folder source (SCRIPTS_DIR) and by `wirescript scripts`.
 *
 * The folder is re-read as a whole after each burst of events, so a rename
 * (two events), an editor's write-to-temp-then-rename or a `git checkout` all
 * end in the right state whatever the event order was.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_MAX_SCRIPT_BYTES, scriptTitle } from '@wirescript/engine';
import { ScriptsFolderError } from './errors.ts';

export interface FolderScript {
  /** Absolute path of the file. */
  file: string;
  /** File name (`probe.js`). */
  name: string;
  code: string;
  /** First comment, else the file name. */
  title: string;
}

export interface FolderProblem {
  file: string;
  name: string;
  /** First comment when it could be read, else the file name. */
  title: string;
  message: string;
}

export interface FolderContents {
  /** Absolute path of the folder. */
  dir: string;
  /** Readable scripts, ordered by file name. */
  scripts: FolderScript[];
  /** Files that are scripts by name but could not be used (unreadable, too large). */
  problems: FolderProblem[];
}

/** `*.js`, not hidden (editor lock files, `.#x.js`), any case of the suffix. */
export function isScriptFileName(name: string): boolean {
  return /\.js$/i.test(name) && !name.startsWith('.');
}

async function readHead(file: string, bytes: number): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Reads the `*.js` files of `dir` (not recursive; symlinks followed). Throws
 * ScriptsFolderError when the folder is missing or not a folder. A file over
 * `maxBytes` is a problem, not read whole.
 */
export async function readScriptsFolder(dir: string, opts: { maxBytes?: number } = {}): Promise<FolderContents> {
  const abs = path.resolve(dir);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_SCRIPT_BYTES;
  let names: string[];
  try {
    const st = await stat(abs);
    if (!st.isDirectory()) throw new ScriptsFolderError(`${abs} is not a folder`);
    names = await readdir(abs);
  } catch (err) {
    if (err instanceof ScriptsFolderError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read: ${(err as Error).message}`;
    throw new ScriptsFolderError(`scripts folder ${abs} ${why}`, { cause: err });
  }
  const out: FolderContents = { dir: abs, scripts: [], problems: [] };
  for (const name of names.filter(isScriptFileName).sort()) {
    const file = path.join(abs, name);
    try {
      const st = await stat(file);
      if (!st.isFile()) continue;
      if (st.size > maxBytes) {
        const head = await readHead(file, 4096);
        out.problems.push({ file, name, title: scriptTitle(head, name), message: `file is ${st.size} bytes, over the ${maxBytes}-byte script limit` });
        continue;
      }
      const code = await readFile(file, 'utf8');
      out.scripts.push({ file, name, code, title: scriptTitle(code, name) });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // Deleted between readdir and read: the watcher will report the deletion on the next pass.
      if (e.code === 'ENOENT') continue;
      out.problems.push({ file, name, title: name, message: `cannot be read: ${e.message}` });
    }
  }
  return out;
}

export interface FolderWatchOptions {
  /** Quiet time after the last event before `onChange` (ms, default 200). */
  debounceMs?: number;
  /** Longest a burst of events can delay `onChange` (ms, default 10 x debounce, at least 1 s). */
  maxDelayMs?: number;
  /** How often each folder's identity is checked, to notice it removed, created again or replaced (ms, default 1000). */
  checkMs?: number;
  /** A folder could not be watched (missing, removed, permission): reported once per failure. */
  onError?(dir: string, err: Error): void;
}

export interface FolderWatch {
  stop(): void;
}

interface Watched {
  watcher: FSWatcher | null;
  /** `dev:ino` of the folder, 'missing', or null before the first look. */
  identity: string | null;
}

/**
 * Calls `onChange` (debounced) after any change in any of `dirs`, including
 * a folder disappearing, coming back or being replaced. Never throws.
 */
export function watchScriptFolders(dirs: readonly string[], onChange: () => void, opts: FolderWatchOptions = {}): FolderWatch {
  const debounceMs = opts.debounceMs ?? 200;
  const maxDelayMs = opts.maxDelayMs ?? Math.max(1000, debounceMs * 10);
  const checkMs = opts.checkMs ?? 1000;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let firstEventAt = 0;
  const fire = () => {
    timer = null;
    firstEventAt = 0;
    if (!stopped) onChange();
  };
  const poke = () => {
    if (stopped) return;
    const now = Date.now();
    if (firstEventAt === 0) firstEventAt = now;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, Math.max(0, Math.min(debounceMs, firstEventAt + maxDelayMs - now)));
  };

  const state = new Map<string, Watched>(dirs.map((d) => [path.resolve(d), { watcher: null, identity: null }]));
  const close = (w: Watched) => {
    w.watcher?.close();
    w.watcher = null;
  };
  const arm = (dir: string, w: Watched) => {
    close(w);
    try {
      // Any event (a script created, written, renamed, deleted; the folder itself renamed) means "read again".
      const fw = watch(dir, { persistent: true }, () => poke());
      fw.on('error', (err) => {
        if (w.watcher !== fw) return;
        close(w);
        w.identity = null;
        opts.onError?.(dir, new ScriptsFolderError(`watching ${dir} failed: ${err.message}`, { cause: err }));
        poke();
      });
      w.watcher = fw;
    } catch (err) {
      opts.onError?.(dir, new ScriptsFolderError(`cannot watch ${dir}: ${(err as Error).message}`, { cause: err }));
    }
  };
  const look = (dir: string, w: Watched, initial: boolean) => {
    let id: string;
    try {
      const st = statSync(dir);
      id = st.isDirectory() ? `${st.dev}:${st.ino}` : 'missing';
    } catch {
      id = 'missing';
    }
    if (id === w.identity) return;
    const before = w.identity;
    w.identity = id;
    if (id === 'missing') {
      close(w);
      opts.onError?.(dir, new ScriptsFolderError(`scripts folder ${dir} ${before === null ? 'does not exist' : 'was removed'}; waiting for it`));
    } else {
      arm(dir, w);
    }
    if (!initial) poke();
  };
  for (const [dir, w] of state) look(dir, w, true);
  // inotify keeps watching a removed folder's old inode: compare identities now and then.
  const check = setInterval(() => {
    for (const [dir, w] of state) look(dir, w, false);
  }, checkMs);
  check.unref();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      clearInterval(check);
      for (const w of state.values()) close(w);
    },
  };
}
