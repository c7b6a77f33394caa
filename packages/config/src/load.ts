import { ConfigError, type ConfigIssue } from './errors.ts';
import { InvalidValueError, type AnyVarSpec, type Config, type Schema } from './schema.ts';

export type Env = Readonly<Record<string, string | undefined>>;

function quote(raw: string): string {
  const s = JSON.stringify(raw);
  return s.length > 82 ? `${s.slice(0, 80)}…"` : s;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function defaultOf(spec: AnyVarSpec): unknown {
  const d = spec.defaultValue;
  // Copy so a default array/object in the schema is never shared with (and frozen by) a loaded config.
  const v = typeof d === 'function' ? (d as () => unknown)() : d;
  return v !== null && typeof v === 'object' ? structuredClone(v) : v;
}

/**
 * Reads every variable of `schema` from `env` (pass an explicit map in tests;
 * services pass `process.env`). An unset or blank variable takes its default.
 * Returns a deeply frozen object, or throws one ConfigError listing every bad variable.
 */
export function loadConfig<S extends Schema>(schema: S, env: Env): Config<S> {
  const out: Record<string, unknown> = {};
  const issues: ConfigIssue[] = [];
  for (const [key, spec] of Object.entries(schema)) {
    const raw = env[spec.name]?.trim();
    if (raw === undefined || raw === '') {
      if (spec.presence === 'required') issues.push({ variable: spec.name, message: `is required (${spec.doc.replace(/\.$/, '')})` });
      else out[key] = spec.presence === 'default' ? defaultOf(spec) : undefined;
      continue;
    }
    try {
      out[key] = spec.parse(raw);
    } catch (err) {
      if (!(err instanceof InvalidValueError)) throw err;
      // Secrets: neither the value, nor a parser message that may quote it, nor the cause (its message may quote it too).
      const message = spec.secret
        ? `${err.message} (value hidden: secret)`
        : `${err.message}${err.detail ? ` (${err.detail})` : ''}, got ${quote(raw)}`;
      issues.push(spec.secret ? { variable: spec.name, message } : { variable: spec.name, message, cause: err.cause ?? err });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return deepFreeze(out) as Config<S>;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function defaultCell(spec: AnyVarSpec): string {
  if (spec.presence === 'required') return '*required*';
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  if (spec.presence === 'optional') return '*unset*';
  const v = defaultOf(spec);
  if (spec.secret) return '`***`';
  const shown = spec.format(v);
  return shown === '' ? '*empty*' : `\`${shown}\``;
}

/** One markdown table row per variable: `| variable | default | meaning |`. */
export function describeConfig(schema: Schema): string[] {
  return Object.values(schema).map((spec) => {
    const meaning = `${spec.doc.replace(/\s*$/, '')}${/[.!?]$/.test(spec.doc.trim()) ? '' : '.'} *(${spec.hint}${spec.secret ? '; secret' : ''})*`;
    return `| \`${spec.name}\` | ${cell(defaultCell(spec))} | ${cell(meaning)} |`;
  });
}

/** The whole markdown table (header and rows) for a README. */
export function configTable(schema: Schema): string {
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...describeConfig(schema)].join('\n');
}

/**
 * A loggable summary keyed by variable name: secrets as `***`, passwords
 * in URLs redacted, unset optional variables as `(unset)`.
 */
export function redactedConfig<S extends Schema>(schema: S, cfg: Config<S>): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const v = (cfg as Record<string, unknown>)[key];
    out[spec.name] = v === undefined ? '(unset)' : spec.secret ? '***' : spec.format(v);
  }
  return Object.freeze(out);
}
