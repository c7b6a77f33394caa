/**
 * Named errors of the script engine. Each carries what a user needs to find
 * the fault in their script: the script's title and, where known, the line.
 */

/** A script was rejected before it ran (syntax, ES5 conformance, size). */
export class ScriptValidationError extends Error {
  override name = 'ScriptValidationError';
  readonly title: string;
  readonly line: number;
  readonly column: number;
  constructor(title: string, message: string, line: number, column: number, options?: { cause?: unknown }) {
    super(`${title}:${line}:${column}: ${message}`, options);
    this.title = title;
    this.line = line;
    this.column = column;
  }
}

/** A helper was called with bad arguments; surfaces as a catchable JS error in the script. */
export class HelperArgumentError extends Error {
  override name = 'TypeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The QuickJS runtime could not be created or became unusable. */
export class SandboxError extends Error {
  override name = 'SandboxError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Engine options were out of range. */
export class EngineConfigError extends Error {
  override name = 'EngineConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
