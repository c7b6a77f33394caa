import { ConfigSchemaError } from './errors.ts';

export type Kind = 'string' | 'int' | 'number' | 'duration' | 'bool' | 'enum' | 'url' | 'list' | 'map' | 'json';

/** A JSON object as parsed from an env variable. */
export type JsonObject = { [key: string]: unknown };

/**
 * Thrown by a variable's parser. `reason` is safe to print for any variable;
 * `detail` may quote the raw value, so the loader drops it for secrets.
 */
export class InvalidValueError extends Error {
  override readonly name = 'InvalidValueError';
  readonly detail: string | undefined;
  constructor(reason: string, options?: { detail?: string; cause?: unknown }) {
    super(reason, { cause: options?.cause });
    this.detail = options?.detail;
  }
}

/** How a variable behaves when it is unset (or set to an empty string). */
export type Presence = 'default' | 'required' | 'optional';

/**
 * One environment variable. `Out` is the type it loads as (`T | undefined`
 * for optional variables); build these with `vars.*`, not by hand.
 */
export interface VarSpec<Out> {
  readonly name: string;
  readonly kind: Kind;
  readonly doc: string;
  readonly secret: boolean;
  readonly presence: Presence;
  /** A value, or a thunk for defaults that depend on the host (hostname, pid). */
  readonly defaultValue?: Exclude<Out, undefined> | (() => Exclude<Out, undefined>);
  /** How the default reads in docs when it is computed. */
  readonly defaultDoc?: string;
  /** Accepted input, for docs: "integer 0–65535", "one of: a, b". */
  readonly hint: string;
  parse(raw: string): Exclude<Out, undefined>;
  format(value: Exclude<Out, undefined>): string;
}

export type AnyVarSpec = VarSpec<any>;
export type Schema = { readonly [key: string]: AnyVarSpec };

type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export type SpecValue<S> = S extends VarSpec<infer Out> ? Out : never;
/** The frozen object `loadConfig` returns for schema `S`. */
export type Config<S extends Schema> = { readonly [K in keyof S]: DeepReadonly<SpecValue<S[K]>> };

interface CommonOpts {
  /** What it means, with its unit. */
  readonly doc: string;
  /** Redacted as `***` in summaries and never echoed in errors. */
  readonly secret?: boolean;
  /** Shown in docs instead of the formatted default (for computed defaults). */
  readonly defaultDoc?: string;
}

/** Exactly one of: a default, required, or optional (loads as undefined when unset). */
type PresenceOpts<T> =
  | { readonly default: T | (() => T); readonly required?: undefined; readonly optional?: undefined }
  | { readonly required: true; readonly default?: undefined; readonly optional?: undefined }
  | { readonly optional: true; readonly default?: undefined; readonly required?: undefined };

type Out<T, P> = P extends { readonly optional: true } ? T | undefined : T;

const NAME_RE = /^[A-Z_][A-Z0-9_]*$/;

function make<T>(
  name: string,
  kind: Kind,
  opts: CommonOpts & { default?: unknown; required?: boolean; optional?: boolean },
  hint: string,
  parse: (raw: string) => Exclude<T, undefined>,
  format: (value: Exclude<T, undefined>) => string,
): VarSpec<T> {
  if (!NAME_RE.test(name)) throw new ConfigSchemaError(`invalid variable name ${JSON.stringify(name)}: use UPPER_SNAKE_CASE`);
  const set = [opts.default !== undefined, opts.required === true, opts.optional === true].filter(Boolean).length;
  if (set !== 1) throw new ConfigSchemaError(`${name}: give exactly one of default, required: true, optional: true`);
  const presence: Presence = opts.default !== undefined ? 'default' : opts.required ? 'required' : 'optional';
  const spec: VarSpec<T> = {
    name,
    kind,
    doc: opts.doc,
    secret: opts.secret === true,
    presence,
    hint,
    parse,
    format,
    ...(opts.default !== undefined ? { defaultValue: opts.default as Exclude<T, undefined> } : {}),
    ...(opts.defaultDoc !== undefined ? { defaultDoc: opts.defaultDoc } : {}),
  };
  return Object.freeze(spec);
}

function rangeHint(min: number | undefined, max: number | undefined, fmt: (n: number) => string): string {
  if (min !== undefined && max !== undefined) return ` from ${fmt(min)} to ${fmt(max)}`;
  if (min !== undefined) return ` ≥ ${fmt(min)}`;
  if (max !== undefined) return ` ≤ ${fmt(max)}`;
  return '';
}

function checkRange(n: number, min: number | undefined, max: number | undefined, what: string): void {
  if ((min !== undefined && n < min) || (max !== undefined && n > max)) throw new InvalidValueError(`must be ${what}`);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `250ms`, `5s`, `2m`, `1h`, `1m30s` or a plain number of milliseconds into ms. */
export function parseDuration(raw: string): number {
  const s = raw.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s));
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(s)) throw new InvalidValueError('must be a duration like 250ms, 5s, 2m or a number of milliseconds');
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * DURATION_UNITS[m[2]];
  return Math.round(total);
}

/** Formats milliseconds the way a person would write them in an env file. */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms !== 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Hides the password of `scheme://user:pass@host` so URLs can be logged. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password === '') return value;
    u.password = '***';
    return u.toString();
  } catch {
    return value;
  }
}

function describeProtocols(protocols: readonly string[]): string {
  const names = protocols.map((p) => `${p.replace(/:$/, '')}://`);
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

interface IntOpts extends CommonOpts {
  readonly min?: number;
  readonly max?: number;
}
interface DurationOpts extends CommonOpts {
  /** Bounds in milliseconds. */
  readonly min?: number;
  readonly max?: number;
}
interface UrlOpts extends CommonOpts {
  /** Accepted schemes with the colon, e.g. `['nats:', 'tls:']`; any when omitted. */
  readonly protocols?: readonly string[];
}

/** Builders for schema entries; the object key in the schema is the property name in the loaded config. */
export const vars = {
  string<const P extends PresenceOpts<string>>(name: string, opts: CommonOpts & P): VarSpec<Out<string, P>> {
    return make(name, 'string', opts, 'string', (raw) => raw, (v) => v) as VarSpec<Out<string, P>>;
  },

  int<const P extends PresenceOpts<number>>(name: string, opts: IntOpts & P): VarSpec<Out<number, P>> {
    const what = `an integer${rangeHint(opts.min, opts.max, String)}`;
    return make(
      name,
      'int',
      opts,
      what.replace(/^an /, ''),
      (raw) => {
        if (!/^[+-]?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw new InvalidValueError(`must be ${what}`);
        const n = Number(raw);
        checkRange(n, opts.min, opts.max, what);
        return n;
      },
      String,
    ) as VarSpec<Out<number, P>>;
  },

  number<const P extends PresenceOpts<number>>(name: string, opts: IntOpts & P): VarSpec<Out<number, P>> {
    const what = `a number${rangeHint(opts.min, opts.max, String)}`;
    return make(
      name,
      'number',
      opts,
      what.replace(/^a /, ''),
      (raw) => {
        if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw)) throw new InvalidValueError(`must be ${what}`);
        const n = Number(raw);
        checkRange(n, opts.min, opts.max, what);
        return n;
      },
      String,
    ) as VarSpec<Out<number, P>>;
  },

  /** Loads as integer milliseconds. */
  duration<const P extends PresenceOpts<number>>(name: string, opts: DurationOpts & P): VarSpec<Out<number, P>> {
    const range = rangeHint(opts.min, opts.max, formatDuration);
    return make(
      name,
      'duration',
      opts,
      `duration (250ms, 5s, 2m; plain number = ms)${range}`,
      (raw) => {
        const ms = parseDuration(raw);
        checkRange(ms, opts.min, opts.max, `a duration${range}`);
        return ms;
      },
      formatDuration,
    ) as VarSpec<Out<number, P>>;
  },

  bool<const P extends PresenceOpts<boolean>>(name: string, opts: CommonOpts & P): VarSpec<Out<boolean, P>> {
    return make(
      name,
      'bool',
      opts,
      'true/false (also 1/0, yes/no, on/off)',
      (raw) => {
        const s = raw.toLowerCase();
        if (TRUE.has(s)) return true;
        if (FALSE.has(s)) return false;
        throw new InvalidValueError('must be true or false (also 1/0, yes/no, on/off)');
      },
      String,
    ) as VarSpec<Out<boolean, P>>;
  },

  /** Matched case-insensitively; loads as the canonical spelling from `values`. */
  enum<const V extends readonly [string, ...string[]], const P extends PresenceOpts<V[number]>>(
    name: string,
    values: V,
    opts: CommonOpts & P,
  ): VarSpec<Out<V[number], P>> {
    const list = values.join(', ');
    return make(
      name,
      'enum',
      opts,
      `one of: ${list}`,
      (raw) => {
        const hit = values.find((v) => v.toLowerCase() === raw.toLowerCase());
        if (hit === undefined) throw new InvalidValueError(`must be one of ${list}`);
        return hit;
      },
      (v) => v,
    ) as VarSpec<Out<V[number], P>>;
  },

  /** Loads as the URL string (as given, trimmed); passwords in it are redacted in summaries. */
  url<const P extends PresenceOpts<string>>(name: string, opts: UrlOpts & P): VarSpec<Out<string, P>> {
    const protocols = opts.protocols;
    const what = protocols && protocols.length > 0 ? `a ${describeProtocols(protocols)} URL` : 'an absolute URL';
    return make(
      name,
      'url',
      opts,
      what.replace(/^an? /, ''),
      (raw) => {
        let u: URL;
        try {
          u = new URL(raw);
        } catch (err) {
          throw new InvalidValueError(`must be ${what}`, { cause: err });
        }
        if (protocols && protocols.length > 0 && !protocols.includes(u.protocol)) throw new InvalidValueError(`must be ${what}`);
        if (u.host === '' && u.protocol !== 'file:') throw new InvalidValueError(`must be ${what} with a host`);
        return raw;
      },
      redactUrl,
    ) as VarSpec<Out<string, P>>;
  },

  /** Comma-separated; items trimmed, empty items dropped. */
  list<const P extends PresenceOpts<readonly string[]>>(name: string, opts: CommonOpts & P): VarSpec<Out<readonly string[], P>> {
    return make(name, 'list', opts, 'comma-separated list', splitList, (v: readonly string[]) => v.join(',')) as VarSpec<
      Out<readonly string[], P>
    >;
  },

  /** Comma-separated list whose items must each be one of `values` (case-insensitive). */
  enumList<const V extends readonly [string, ...string[]], const P extends PresenceOpts<readonly V[number][]>>(
    name: string,
    values: V,
    opts: CommonOpts & P,
  ): VarSpec<Out<readonly V[number][], P>> {
    const list = values.join(', ');
    return make(
      name,
      'list',
      opts,
      `comma-separated list of: ${list}`,
      (raw) =>
        splitList(raw).map((item) => {
          const hit = values.find((v) => v.toLowerCase() === item.toLowerCase());
          if (hit === undefined) throw new InvalidValueError(`items must be among ${list}`, { detail: `bad item ${JSON.stringify(item)}` });
          return hit;
        }),
      (v: readonly string[]) => v.join(','),
    ) as VarSpec<Out<readonly V[number][], P>>;
  },

  /**
   * `key1=value1,key2=value2` (the OTel header format); values are URL-decoded,
   * so `%2C` stands for a comma inside a value.
   */
  map<const P extends PresenceOpts<Readonly<Record<string, string>>>>(
    name: string,
    opts: CommonOpts & P,
  ): VarSpec<Out<Readonly<Record<string, string>>, P>> {
    return make(
      name,
      'map',
      opts,
      'comma-separated key=value pairs',
      (raw) => {
        const out: Record<string, string> = {};
        for (const pair of splitList(raw)) {
          const eq = pair.indexOf('=');
          if (eq <= 0) throw new InvalidValueError('must be comma-separated key=value pairs');
          try {
            out[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
          } catch (err) {
            throw new InvalidValueError('must be comma-separated key=value pairs with valid %-escapes', { cause: err });
          }
        }
        return out;
      },
      (v: Readonly<Record<string, string>>) =>
        Object.entries(v)
          .map(([k, val]) => `${encodeURIComponent(k)}=${encodeURIComponent(val)}`)
          .join(','),
    ) as VarSpec<Out<Readonly<Record<string, string>>, P>>;
  },

  /**
   * A JSON object. `validate` may narrow it (e.g. a zod schema's `parse`);
   * whatever it throws is reported as the variable's error.
   */
  json<T = JsonObject, const P extends PresenceOpts<T> = PresenceOpts<T>>(
    name: string,
    opts: CommonOpts & P & { readonly validate?: (value: JsonObject) => T },
  ): VarSpec<Out<T, P>> {
    const validate = opts.validate;
    return make(
      name,
      'json',
      opts,
      'JSON object',
      (raw) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch (err) {
          throw new InvalidValueError('must be a JSON object', { detail: (err as Error).message, cause: err });
        }
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidValueError('must be a JSON object');
        if (!validate) return parsed as Exclude<T, undefined>;
        try {
          return validate(parsed as JsonObject) as Exclude<T, undefined>;
        } catch (err) {
          throw new InvalidValueError('must be a valid JSON object', { detail: (err as Error)?.message, cause: err });
        }
      },
      (v) => JSON.stringify(v),
    ) as VarSpec<Out<T, P>>;
  },
};

/**
 * Declares a schema: checks that variable names are unique and freezes it.
 * Spread shared fragments in: `defineConfig({ ...commonConfig, port: vars.int(...) })`.
 */
export function defineConfig<const S extends Schema>(schema: S): S {
  const seen = new Map<string, string>();
  for (const [key, spec] of Object.entries(schema)) {
    const other = seen.get(spec.name);
    if (other !== undefined) throw new ConfigSchemaError(`variable ${spec.name} is declared twice (keys ${other} and ${key})`);
    seen.set(spec.name, key);
  }
  return Object.freeze(schema);
}
