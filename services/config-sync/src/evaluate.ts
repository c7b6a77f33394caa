/**
 * From what the source holds to what runners get: every script is validated
 * (ES5, size limit). An invalid script is reported with its title, line and
 * column and not activated; if an earlier version of it (same title) was
 * active, that version stays active, so a replica started later runs the
 * same code as the ones already running. The other scripts go on.
 */
import { ScriptValidationError, parseScript } from '@wirescript/engine';
import type { EntryProblem, StoredScript } from './format.ts';

/** A script of the written set (the fields of wirescript.v1.Script). */
export interface SetScript {
  index: number;
  title: string;
  code: string;
  active: boolean;
}

/** What config-sync knows about one script, for logs and status. */
export interface ScriptDiagnostic {
  /** -1 when the entry had no usable index. */
  index: number;
  title: string;
  /** The source asks for it to run. */
  wanted: boolean;
  /** It runs (in the written set, active). */
  active: boolean;
  valid: boolean;
  /** Where the problem is (1-based); 0 when not about a position. */
  line: number;
  column: number;
  /** Empty when valid. */
  message: string;
  /** Invalid, and the previous version (same title) keeps running. */
  keptPrevious: boolean;
}

export interface Evaluation {
  /** The set to write: valid scripts as they are, invalid ones inactive (or their previous version). */
  scripts: SetScript[];
  diagnostics: ScriptDiagnostic[];
}

/** `line:column: message` (or just the message), the form status and logs use. */
export function describeDiagnostic(d: ScriptDiagnostic): string {
  const where = d.line > 0 ? `${d.line}:${d.column}: ` : '';
  return `${where}${d.message}${d.keptPrevious ? ' (the previous version keeps running)' : ''}`;
}

export function evaluateScripts(
  candidates: readonly StoredScript[],
  entryProblems: readonly EntryProblem[],
  previous: readonly SetScript[],
  maxBytes: number,
): Evaluation {
  const out: Evaluation = { scripts: [], diagnostics: [] };
  const previousByTitle = new Map(previous.filter((p) => p.active).map((p) => [p.title, p]));
  for (const c of candidates) {
    try {
      parseScript(c.code, { fallbackTitle: c.title, maxBytes });
      out.scripts.push({ index: c.index, title: c.title, code: c.code, active: c.active });
      out.diagnostics.push({ index: c.index, title: c.title, wanted: c.active, active: c.active, valid: true, line: 0, column: 0, message: '', keptPrevious: false });
    } catch (err) {
      if (!(err instanceof ScriptValidationError)) throw err;
      const prefix = `${err.title}:${err.line}:${err.column}: `;
      const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
      const prev = c.active ? previousByTitle.get(c.title) : undefined;
      if (prev) out.scripts.push({ index: c.index, title: c.title, code: prev.code, active: true });
      else out.scripts.push({ index: c.index, title: c.title, code: c.code, active: false });
      out.diagnostics.push({
        index: c.index, title: c.title, wanted: c.active, active: prev !== undefined, valid: false,
        line: err.line, column: err.column, message, keptPrevious: prev !== undefined,
      });
    }
  }
  for (const p of entryProblems) {
    out.diagnostics.push({ index: p.index, title: p.title, wanted: false, active: false, valid: false, line: 0, column: 0, message: p.message, keptPrevious: false });
  }
  out.diagnostics.sort((a, b) => a.index - b.index);
  return out;
}

/** Same scripts (index, title, code, active) in the same order. */
export function sameScripts(a: readonly SetScript[], b: readonly SetScript[]): boolean {
  if (a.length !== b.length) return false;
  const key = (s: SetScript) => `${s.index}`;
  const sa = [...a].sort((x, y) => x.index - y.index);
  const sb = [...b].sort((x, y) => x.index - y.index);
  return sa.every((s, i) => {
    const t = sb[i];
    return key(s) === key(t) && s.title === t.title && s.code === t.code && s.active === t.active;
  });
}

/** Same keys and values. */
export function sameEnv(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}
