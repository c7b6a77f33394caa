import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import {
  ConfigError,
  ConfigSchemaError,
  commonConfig,
  configTable,
  defineConfig,
  describeConfig,
  formatDuration,
  loadConfig,
  parseDuration,
  redactedConfig,
  vars,
  type Config,
} from './index.ts';

const schema = defineConfig({
  natsUrl: vars.url('NATS_URL', { default: 'nats://127.0.0.1:4222', protocols: ['nats:', 'tls:'], doc: 'NATS server URL' }),
  port: vars.int('PORT', { default: 8080, min: 1, max: 65535, doc: 'Listen port' }),
  ratio: vars.number('RATIO', { default: 0.5, min: 0, max: 1, doc: 'Ratio' }),
  timeout: vars.duration('TIMEOUT', { default: 5000, doc: 'Request timeout (ms)' }),
  verbose: vars.bool('VERBOSE', { default: false, doc: 'Verbose output' }),
  mode: vars.enum('MODE', ['fast', 'safe'], { default: 'safe', doc: 'Mode' }),
  tags: vars.list('TAGS', { default: ['a', 'b'], doc: 'Tags' }),
  token: vars.string('TOKEN', { optional: true, secret: true, doc: 'API token' }),
  name: vars.string('NAME', { required: true, doc: 'Service name' }),
  extra: vars.json('EXTRA', { optional: true, doc: 'Extra settings' }),
  scriptEnv: vars.json('SCRIPT_ENV', { default: {}, secret: true, doc: 'Script env' }),
});

function catchConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults and infers types', () => {
    const cfg = loadConfig(schema, { NAME: 'svc' });
    // Type-level checks: these assignments fail to compile if inference regresses.
    const port: number = cfg.port;
    const mode: 'fast' | 'safe' = cfg.mode;
    const token: string | undefined = cfg.token;
    const name: string = cfg.name;
    const tags: readonly string[] = cfg.tags;
    // @ts-expect-error a required variable is never undefined, and an optional one may be
    const tokenNarrow: string = cfg.token;
    void [port, mode, token, name, tags, tokenNarrow];
    assert.deepEqual(
      { ...cfg },
      {
        natsUrl: 'nats://127.0.0.1:4222',
        port: 8080,
        ratio: 0.5,
        timeout: 5000,
        verbose: false,
        mode: 'safe',
        tags: ['a', 'b'],
        token: undefined,
        name: 'svc',
        extra: undefined,
        scriptEnv: {},
      },
    );
  });

  it('parses every kind', () => {
    const cfg = loadConfig(schema, {
      NATS_URL: ' tls://nats.example:4443 ',
      PORT: '9000',
      RATIO: '0.25',
      TIMEOUT: '2m',
      VERBOSE: 'yes',
      MODE: 'FAST',
      TAGS: ' x , ,y,',
      TOKEN: 's3cret',
      NAME: 'svc',
      EXTRA: '{"a":{"b":[1,2]}}',
    });
    assert.equal(cfg.natsUrl, 'tls://nats.example:4443');
    assert.equal(cfg.port, 9000);
    assert.equal(cfg.ratio, 0.25);
    assert.equal(cfg.timeout, 120_000);
    assert.equal(cfg.verbose, true);
    assert.equal(cfg.mode, 'fast');
    assert.deepEqual(cfg.tags, ['x', 'y']);
    assert.equal(cfg.token, 's3cret');
    assert.deepEqual(cfg.extra, { a: { b: [1, 2] } });
  });

  it('treats blank values as unset', () => {
    const cfg = loadConfig(schema, { NAME: 'svc', PORT: '  ', TOKEN: '' });
    assert.equal(cfg.port, 8080);
    assert.equal(cfg.token, undefined);
  });

  it('returns a deeply frozen object', () => {
    const cfg = loadConfig(schema, { NAME: 'svc', EXTRA: '{"a":{"b":[1]}}' });
    assert.ok(Object.isFrozen(cfg));
    assert.ok(Object.isFrozen(cfg.tags));
    assert.ok(Object.isFrozen((cfg.extra as { a: { b: number[] } }).a.b));
    assert.throws(() => {
      (cfg as { port: number }).port = 1;
    }, TypeError);
    // Default values are copied, so freezing one config does not freeze the schema's default.
    const again = loadConfig(schema, { NAME: 'other' });
    assert.notEqual(again.tags, cfg.tags);
  });

  it('names every bad variable and why, in one line', () => {
    const err = catchConfigError(() =>
        loadConfig(schema, {
          NATS_URL: 'x',
          PORT: '70000',
          RATIO: 'abc',
          TIMEOUT: '5 parsecs',
          VERBOSE: 'maybe',
          MODE: 'slow',
          EXTRA: '[1]',
        }),
    );
    assert.ok(!err.message.includes('\n'));
    assert.deepEqual(
      err.issues.map((i) => `${i.variable}: ${i.message}`),
      [
        'NATS_URL: must be a nats:// or tls:// URL, got "x"',
        'PORT: must be an integer from 1 to 65535, got "70000"',
        'RATIO: must be a number from 0 to 1, got "abc"',
        'TIMEOUT: must be a duration like 250ms, 5s, 2m or a number of milliseconds, got "5 parsecs"',
        'VERBOSE: must be true or false (also 1/0, yes/no, on/off), got "maybe"',
        'MODE: must be one of fast, safe, got "slow"',
        'NAME: is required (Service name)',
        'EXTRA: must be a JSON object, got "[1]"',
      ],
    );
    assert.match(err.message, /^invalid configuration: NATS_URL: must be a nats:\/\/ or tls:\/\/ URL, got "x"; PORT: /);
    assert.equal(err.name, 'ConfigError');
  });

  it('never echoes a secret value in an error', () => {
    const err = catchConfigError(() => loadConfig(schema, { NAME: 'n', SCRIPT_ENV: '{"password": hunter2}' }));
    assert.equal(err.message, 'invalid configuration: SCRIPT_ENV: must be a JSON object (value hidden: secret)');
    assert.equal(err.cause, undefined);
    assert.ok(!JSON.stringify(err.issues).includes('hunter2'));
  });

  it('keeps the parse error as cause for non-secrets', () => {
    const err = catchConfigError(() => loadConfig(schema, { NAME: 'n', EXTRA: '{' }));
    assert.ok(err.cause instanceof SyntaxError);
  });

  it('runs a json validator and reports what it throws', () => {
    const s = defineConfig({
      limits: vars.json('LIMITS', {
        default: { max: 1 },
        doc: 'Limits',
        validate: (v) => {
          if (typeof v.max !== 'number') throw new Error('max must be a number');
          return { max: v.max };
        },
      }),
    });
    const cfg = loadConfig(s, { LIMITS: '{"max": 3}' });
    const max: number = cfg.limits.max;
    assert.equal(max, 3);
    assert.throws(() => loadConfig(s, { LIMITS: '{"max": "x"}' }), /LIMITS: must be a valid JSON object \(max must be a number\)/);
  });

  it('supports computed defaults, maps and enum lists', () => {
    const s = defineConfig({
      host: vars.string('HOST', { default: () => 'computed', defaultDoc: 'host name', doc: 'Host' }),
      headers: vars.map('HEADERS', { optional: true, doc: 'Headers' }),
      exporters: vars.enumList('EXPORTERS', ['otlp', 'prometheus'], { default: ['otlp'], doc: 'Exporters' }),
    });
    const cfg = loadConfig(s, { HEADERS: 'a=1, authorization=Bearer%20x', EXPORTERS: 'Prometheus,otlp' });
    assert.equal(cfg.host, 'computed');
    assert.deepEqual(cfg.headers, { a: '1', authorization: 'Bearer x' });
    const ex: readonly ('otlp' | 'prometheus')[] = cfg.exporters;
    assert.deepEqual(ex, ['prometheus', 'otlp']);
    assert.throws(() => loadConfig(s, { EXPORTERS: 'otlp,zipkin' }), /EXPORTERS: items must be among otlp, prometheus \(bad item "zipkin"\), got "otlp,zipkin"/);
    assert.throws(() => loadConfig(s, { HEADERS: 'novalue' }), /HEADERS: must be comma-separated key=value pairs/);
  });
});

describe('schema definition', () => {
  it('rejects duplicate names and bad presence', () => {
    assert.throws(
      () => defineConfig({ a: vars.int('X', { default: 1, doc: 'x' }), b: vars.int('X', { default: 2, doc: 'x' }) }),
      ConfigSchemaError,
    );
    assert.throws(() => vars.int('lower', { default: 1, doc: 'x' }), ConfigSchemaError);
    // @ts-expect-error one of default / required / optional is needed
    assert.throws(() => vars.int('NOTHING', { doc: 'x' }), ConfigSchemaError);
  });
});

describe('durations', () => {
  it('parses units and plain milliseconds', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('5s'), 5000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('1500'), 1500);
    assert.equal(parseDuration('5S'), 5000);
    for (const bad of ['', 's', '-5s', '5 s', '5d', '1e3']) assert.throws(() => parseDuration(bad), /must be a duration/, bad);
  });
  it('formats the way people write them', () => {
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(5000), '5s');
    assert.equal(formatDuration(120_000), '2m');
    assert.equal(formatDuration(1500), '1500ms');
    assert.equal(formatDuration(0), '0ms');
  });
  it('enforces bounds', () => {
    const s = defineConfig({ t: vars.duration('T', { default: 1000, min: 100, max: 60_000, doc: 'T' }) });
    assert.throws(() => loadConfig(s, { T: '50ms' }), /T: must be a duration from 100ms to 1m, got "50ms"/);
  });
});

describe('describeConfig / redactedConfig', () => {
  it('renders markdown rows', () => {
    const rows = describeConfig(schema);
    assert.equal(rows.length, Object.keys(schema).length);
    assert.equal(rows[0], '| `NATS_URL` | `nats://127.0.0.1:4222` | NATS server URL. *(nats:// or tls:// URL)* |');
    assert.equal(rows[1], '| `PORT` | `8080` | Listen port. *(integer from 1 to 65535)* |');
    assert.equal(rows[3], '| `TIMEOUT` | `5s` | Request timeout (ms). *(duration (250ms, 5s, 2m; plain number = ms))* |');
    assert.match(rows[7], /^\| `TOKEN` \| \*unset\* \| API token\. \*\(string; secret\)\* \|$/);
    assert.match(rows[8], /^\| `NAME` \| \*required\* \|/);
    const table = configTable(commonConfig);
    assert.match(table, /^\| Variable \| Default \| Meaning \|\n\| --- \| --- \| --- \|\n\| `NATS_URL` /);
    assert.match(table, /\| `NODE_NAME` \| host name \|/);
  });

  it('redacts secrets and URL passwords', () => {
    const s = defineConfig({ ...schema, nats2: vars.url('NATS2', { optional: true, doc: 'x' }) });
    const cfg: Config<typeof s> = loadConfig(s, { NAME: 'svc', TOKEN: 'hunter2', NATS2: 'nats://u:pw@h:4222' });
    const summary = redactedConfig(s, cfg);
    assert.equal(summary.TOKEN, '***');
    assert.equal(summary.SCRIPT_ENV, '***');
    assert.equal(summary.NATS2, 'nats://u:***@h:4222');
    assert.equal(summary.EXTRA, '(unset)');
    assert.equal(summary.TIMEOUT, '5s');
    assert.equal(summary.TAGS, 'a,b');
    assert.ok(!JSON.stringify(summary).includes('hunter2'));
  });
});

describe('commonConfig', () => {
  it('has the documented defaults', () => {
    const cfg = loadConfig(commonConfig, {});
    assert.equal(cfg.natsUrl, 'nats://127.0.0.1:4222');
    assert.equal(cfg.nodeName, os.hostname());
    assert.equal(cfg.replicaId, `${os.hostname()}-${process.pid}`);
    assert.equal(cfg.logLevel, 'info');
    assert.equal(cfg.otlpEndpoint, undefined);
    assert.equal(cfg.tracesExporter, undefined);
    assert.equal(cfg.metricsExporter, undefined);
    assert.equal(cfg.prometheusPort, 0);
    assert.equal(cfg.prometheusHost, '0.0.0.0');
    assert.equal(cfg.metricExportInterval, 60_000);
    assert.equal(cfg.traceSampleRatio, 1);
  });
  it('rejects a non-nats URL with the documented message', () => {
    assert.throws(() => loadConfig(commonConfig, { NATS_URL: 'x' }), {
      name: 'ConfigError',
      message: 'invalid configuration: NATS_URL: must be a nats:// or tls:// URL, got "x"',
    });
    assert.throws(() => loadConfig(commonConfig, { NATS_URL: 'http://h:4222' }), /NATS_URL: must be a nats:\/\/ or tls:\/\/ URL/);
  });
  it('redacts OTLP headers', () => {
    const cfg = loadConfig(commonConfig, { OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20tok' });
    assert.equal(redactedConfig(commonConfig, cfg).OTEL_EXPORTER_OTLP_HEADERS, '***');
  });
});
