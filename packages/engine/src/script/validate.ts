/**
 * Script validation at the edge: every script is parsed with a real ES5
 * parser before it reaches the sandbox, so users get the title, line and
 * column of the first offending token instead of a runtime surprise.
 */
import { parse, type Comment, type Program } from 'acorn';
import { ScriptValidationError } from '../errors.ts';

/** Default upper bound of one script's source, in bytes (UTF-16 code units). */
export const DEFAULT_MAX_SCRIPT_BYTES = 1024 * 1024;

export interface ParsedScript {
  title: string;
  code: string;
  ast: Program;
}

/**
 * Kubeshark's rule: a script's title is its first comment. Block comments use
 * their first non-empty line with leading `*` removed. Falls back to `fallback`
 * (usually the file name).
 */
export function titleFromComments(comments: readonly Comment[], fallback: string): string {
  for (const c of comments) {
    const lines = c.value.split(/\r?\n/);
    for (const raw of lines) {
      const line = raw.replace(/^\s*\*+/, '').trim();
      if (line.length > 0) return line.slice(0, 200);
    }
  }
  return fallback;
}

/** Reads only the first comment, cheaply, without requiring valid ES5. */
export function scriptTitle(code: string, fallback: string): string {
  const comments: Comment[] = [];
  try {
    parse(code, { ecmaVersion: 'latest', sourceType: 'script', allowReturnOutsideFunction: true, onComment: comments });
  } catch {
    // Still use the comments gathered before the syntax error.
  }
  return titleFromComments(comments, fallback);
}

export interface ValidateOptions {
  /** Title to use when the code has no comment (usually the file name). */
  fallbackTitle: string;
  maxBytes?: number;
}

/** Parses `code` as ES5 and returns its title and AST, or throws ScriptValidationError. */
export function parseScript(code: string, opts: ValidateOptions): ParsedScript {
  const comments: Comment[] = [];
  if (typeof code !== 'string') {
    throw new ScriptValidationError(opts.fallbackTitle, 'script code must be a string', 1, 1);
  }
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_SCRIPT_BYTES;
  if (code.length > maxBytes) {
    throw new ScriptValidationError(scriptTitle(code.slice(0, 4096), opts.fallbackTitle),
      `script is ${code.length} bytes, over the ${maxBytes}-byte limit`, 1, 1);
  }
  let ast: Program;
  try {
    ast = parse(code, { ecmaVersion: 5, sourceType: 'script', locations: true, onComment: comments });
  } catch (err) {
    const e = err as SyntaxError & { loc?: { line: number; column: number } };
    const title = scriptTitle(code, opts.fallbackTitle);
    const line = e.loc?.line ?? 1;
    const column = (e.loc?.column ?? 0) + 1;
    // acorn appends " (line:col)"; we report the position separately.
    let message = String(e.message).replace(/\s*\(\d+:\d+\)$/, '');
    try {
      parse(code, { ecmaVersion: 'latest', sourceType: 'script' });
      message += ' (ES2015+ syntax such as let/const, arrow functions, classes or template literals; scripts must be ES5)';
    } catch {
      // Not valid in any edition: the plain syntax error says it all.
    }
    throw new ScriptValidationError(title, `not valid ES5: ${message}`, line, column, { cause: err });
  }
  return { title: titleFromComments(comments, opts.fallbackTitle), code, ast };
}
