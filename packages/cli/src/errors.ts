/** A user error on the command line: printed as one clear line, exit code 2 (usage) or 1 (input). */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 2, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}
