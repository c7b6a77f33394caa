/**
 * `wirescript run <script.js>... --items F.jsonl`: runs scripts on traffic in
 * one process, no NATS. Like a cluster, it runs the scripts twice: as a worker
 * (onItemCaptured, onPacketCaptured, jobs) and as the hub (onHubAction, jobs;
 * utils.nodeName() is "hub"); hub.action() calls go from the worker to the hub.
 * console.log lines go to stdout, errors to stderr with the script's title and
 * line. At the end of input every scheduled job runs once more, then it exits.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { engineConfig, ConfigError, loadConfig } from '@wirescript/config';
import { ScriptEngine, limitsFromConfig, type ConsoleEvent, type EngineOutput, type LoadReport, type ScriptSpec } from '@wirescript/engine';
import { CliError } from '../errors.ts';

export const RUN_HELP = `Usage: wirescript run <script.js>... --items <file.jsonl> [options]

Runs scripts on captured API calls in one process (no NATS, no cluster).

Input:
  --items <file>     Kubeshark-shaped items, one JSON object per line ("-" = stdin)

Options:
  --env K=V          Sets env.K for the scripts (repeatable)
  --node <name>      What utils.nodeName() returns on the worker side (default: host name)
  --quiet            No progress or summary on stderr
  -h, --help         This help

Limits come from the environment: HOOK_TIMEOUT (default 200ms), JOB_TIMEOUT (5s),
SCRIPT_MEMORY_LIMIT_MB (128), SCRIPT_STACK_LIMIT_KB (256), DISPATCH_BATCH_SIZE (256).

Output: each console.log prints one line on stdout; console.error lines and
script errors (with title and line) go to stderr. When the input ends, every
scheduled job runs once more. Exit status: 0 done, 1 invalid script or
unreadable input, 2 bad usage.`;

export interface RunIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin?: NodeJS.ReadableStream;
  env?: NodeJS.ProcessEnv;
}

interface RunArgs {
  scripts: string[];
  items: string;
  env: Record<string, string>;
  node: string;
  quiet: boolean;
}

export function parseRunArgs(argv: string[]): RunArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        items: { type: 'string' },
        env: { type: 'string', multiple: true },
        node: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new CliError(`run: ${(err as Error).message} (see wirescript run --help)`);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (parsed.positionals.length === 0) throw new CliError('run: no script given (usage: wirescript run <script.js>... --items <file.jsonl>)');
  if (v.items === undefined) throw new CliError('run: no input given: pass --items <file.jsonl>');
  const env: Record<string, string> = {};
  for (const kv of v.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new CliError(`run: --env takes K=V, got "${kv}"`);
    const key = kv.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new CliError(`run: --env name "${key}" is not a valid identifier`);
    env[key] = kv.slice(eq + 1);
  }
  return { scripts: parsed.positionals, items: v.items, env, node: v.node ?? os.hostname(), quiet: v.quiet ?? false };
}

function printProblems(report: LoadReport, io: RunIo): boolean {
  for (const p of report.rejected) io.stderr.write(`wirescript: invalid script ${p.title}:${p.line}:${p.column}: ${p.message}\n`);
  return report.rejected.length === 0;
}

/** Runs the command; resolves to the exit code. */
export async function runCommand(argv: string[], io: RunIo): Promise<number> {
  const args = parseRunArgs(argv);
  if (args === 'help') {
    io.stdout.write(`${RUN_HELP}\n`);
    return 0;
  }
  let limits;
  try {
    const cfg = loadConfig(engineConfig, io.env ?? process.env);
    limits = { limits: limitsFromConfig(cfg), batchSize: cfg.dispatchBatchSize };
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`run: ${err.message}`);
    throw err;
  }

  const specs: ScriptSpec[] = [];
  for (const [i, file] of args.scripts.entries()) {
    let code: string;
    try {
      code = await readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(`run: cannot read script ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 1);
    }
    specs.push({ index: i, code, fileName: path.basename(file) });
  }

  const write = (stream: NodeJS.WritableStream, e: ConsoleEvent) => {
    if (e.level === 'clear') return;
    stream.write(`${e.text}\n`);
  };
  const pendingActions: { action: string; objectJson: string }[] = [];
  const output = (): EngineOutput => ({
    console: (e) => write(e.level === 'error' ? io.stderr : io.stdout, e),
    hubAction: (e) => pendingActions.push({ action: e.action, objectJson: e.objectJson }),
    job: () => {},
  });
  const worker = await ScriptEngine.create({ nodeName: args.node, mode: 'worker', output: output(), ...limits });
  const hub = await ScriptEngine.create({ nodeName: 'hub', mode: 'hub', output: output(), ...limits });
  try {
    const ok = printProblems(worker.load({ scripts: specs, env: args.env }), io);
    if (!ok) return 1;
    hub.load({ scripts: specs, env: args.env });

    // hub.action() from either side reaches the hub after the current dispatch (never re-entrantly).
    const flushActions = () => {
      for (let rounds = 0; pendingActions.length > 0 && rounds < 1000; rounds++) {
        const batch = pendingActions.splice(0);
        for (const a of batch) hub.hubAction(a.action, JSON.parse(a.objectJson));
      }
    };

    const progress = !args.quiet && io.stderr.isTTY === true;
    const started = performance.now();
    let items = 0;
    let invalid = 0;
    let lastProgress = 0;
    const batch: Record<string, unknown>[] = [];
    const flush = async () => {
      worker.dispatchItems(batch);
      batch.length = 0;
      flushActions();
      // Lets cron timers fire during long inputs.
      await new Promise((r) => setImmediate(r));
    };

    let input: NodeJS.ReadableStream;
    if (args.items === '-') {
      input = io.stdin ?? process.stdin;
    } else {
      const stream = createReadStream(args.items);
      await new Promise<void>((resolve, reject) => {
        stream.once('open', () => resolve());
        stream.once('error', (err: NodeJS.ErrnoException) => reject(new CliError(`run: cannot read items ${args.items}: ${err.code ?? err.message}`, 1, { cause: err })));
      });
      input = stream;
    }
    let lineNo = 0;
    try {
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
        lineNo++;
        if (line.trim() === '') continue;
        let obj: unknown;
        try {
          obj = JSON.parse(line);
        } catch (err) {
          obj = undefined;
          if (++invalid <= 10) io.stderr.write(`wirescript: ${args.items}:${lineNo}: skipped, not valid JSON: ${(err as Error).message}\n`);
          continue;
        }
        if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
          if (++invalid <= 10) io.stderr.write(`wirescript: ${args.items}:${lineNo}: skipped, not a JSON object\n`);
          continue;
        }
        batch.push(obj as Record<string, unknown>);
        items++;
        if (batch.length >= 1024) await flush();
        if (progress && performance.now() - lastProgress > 500) {
          lastProgress = performance.now();
          io.stderr.write(`\r${items} items (${Math.round(items / ((lastProgress - started) / 1000))}/s)`);
        }
      }
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`run: cannot read items ${args.items} at line ${lineNo + 1}: ${(err as Error).message}`, 1, { cause: err });
    }
    if (batch.length > 0) await flush();
    if (progress) io.stderr.write('\r\x1b[K');

    // End of input: every scheduled job runs once more (worker first, so its hub actions reach the hub's jobs).
    worker.runAllJobsNow();
    flushActions();
    hub.runAllJobsNow();
    flushActions();

    if (invalid > 10) io.stderr.write(`wirescript: ${invalid} input lines skipped in all\n`);
    if (!args.quiet && io.stderr.isTTY === true) {
      const st = worker.stats();
      const secs = (performance.now() - started) / 1000;
      io.stderr.write(`wirescript: ${items} items in ${secs.toFixed(2)} s, ${st.hookCalls} hook calls, ${st.hookErrors} script errors\n`);
    }
    return 0;
  } finally {
    worker.close();
    hub.close();
  }
}
