/** One bad variable: which one, and why (already safe to print: secrets are never echoed). */
export interface ConfigIssue {
  readonly variable: string;
  readonly message: string;
  readonly cause?: unknown;
}

/**
 * Thrown by `loadConfig` when one or more variables are missing or malformed.
 * The message is a single line naming every bad variable, so a CLI can print it as is.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const causes = issues.filter((i) => i.cause !== undefined).map((i) => i.cause);
    super(`invalid configuration: ${issues.map((i) => `${i.variable}: ${i.message}`).join('; ')}`, {
      cause: causes.length === 0 ? undefined : causes.length === 1 ? causes[0] : new AggregateError(causes),
    });
    this.issues = Object.freeze([...issues]);
  }
}

/** Thrown at schema definition time (a programming error, not a user one). */
export class ConfigSchemaError extends Error {
  override readonly name = 'ConfigSchemaError';
}
