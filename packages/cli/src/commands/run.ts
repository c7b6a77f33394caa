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
import { ScriptEngine, limitsFromConfig, type ConsoleEvent, type EngineOutput, type LoadReport, type PacketInfo, type ScriptSpec } from '@wirescript/engine';
import { CliError } from '../errors.ts';

export const RUN_HELP = `Usage: wirescript run <script.js>... (--items F.jsonl | --pcap F | --interface I [--filter BPF]) [options]

Runs scripts on API calls in one process (no NATS, no cluster).

Input (one of):
  --items <file>       Kubeshark-shaped items, one JSON object per line ("-" = stdin)
  --pcap <file>        A pcap or pcapng capture: decoded, reassembled and dissected
                       (HTTP/1, HTTP/2, gRPC, DNS, Redis); onPacketCaptured sees every packet
  --interface <name>   Live capture ("any" = every interface; needs root or CAP_NET_RAW)
  --filter <bpf>       BPF filter for --interface (tcpdump syntax)
  --duration <s>       With --interface: stop after this many seconds (default: until Ctrl-C)

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
  source: { kind: 'items'; path: string } | { kind: 'pcap'; path: string } | { kind: 'interface'; name: string; filter: string; durationS: number };
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
        pcap: { type: 'string' },
        interface: { type: 'string' },
        filter: { type: 'string' },
        duration: { type: 'string' },
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
  if (parsed.positionals.length === 0) throw new CliError('run: no script given (usage: wirescript run <script.js>... --items F.jsonl | --pcap F | --interface I)');
  const inputs = [v.items, v.pcap, v.interface].filter((x) => x !== undefined);
  if (inputs.length === 0) throw new CliError('run: no input given: pass --items <file.jsonl>, --pcap <file> or --interface <name>');
  if (inputs.length > 1) throw new CliError('run: pass only one of --items, --pcap and --interface');
  if (v.filter !== undefined && v.interface === undefined) throw new CliError('run: --filter goes with --interface');
  if (v.duration !== undefined && v.interface === undefined) throw new CliError('run: --duration goes with --interface');
  const durationS = v.duration === undefined ? 0 : Number(v.duration);
  if (!(durationS >= 0) || !Number.isFinite(durationS)) throw new CliError(`run: --duration takes a number of seconds, got "${v.duration}"`);
  const source: RunArgs['source'] = v.items !== undefined ? { kind: 'items', path: v.items }
    : v.pcap !== undefined ? { kind: 'pcap', path: v.pcap }
    : { kind: 'interface', name: v.interface!, filter: v.filter ?? '', durationS };
  const env: Record<string, string> = {};
  for (const kv of v.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new CliError(`run: --env takes K=V, got "${kv}"`);
    const key = kv.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new CliError(`run: --env name "${key}" is not a valid identifier`);
    env[key] = kv.slice(eq + 1);
  }
  return { scripts: parsed.positionals, source, env, node: v.node ?? os.hostname(), quiet: v.quiet ?? false };
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
    const feed = new Feeder(worker, flushActions, io, progress);
    let exitCode = 0;
    if (args.source.kind === 'items') {
      await feedItems(args.source.path, feed, io);
    } else {
      const { feedPcap, feedInterface } = await import('./run-capture.ts');
      exitCode = args.source.kind === 'pcap'
        ? await feedPcap(args.source.path, feed, io, args.node)
        : await feedInterface(args.source, feed, io, args.node);
    }
    await feed.flush();
    if (progress) io.stderr.write('\r\x1b[K');

    // End of input: every scheduled job runs once more (worker first, so its hub actions reach the hub's jobs).
    worker.runAllJobsNow();
    flushActions();
    hub.runAllJobsNow();
    flushActions();

    if (feed.invalid > 10) io.stderr.write(`wirescript: ${feed.invalid} input lines skipped in all\n`);
    if (!args.quiet && io.stderr.isTTY === true) {
      const st = worker.stats();
      const secs = (performance.now() - feed.started) / 1000;
      io.stderr.write(`wirescript: ${feed.items} items in ${secs.toFixed(2)} s, ${st.hookCalls} hook calls, ${st.hookErrors} script errors\n`);
    }
    return exitCode;
  } finally {
    worker.close();
    hub.close();
  }
}

/** Batches items and packet summaries into the worker engine; yields now and then so cron timers fire. */
export class Feeder {
  items = 0;
  invalid = 0;
  readonly started = performance.now();
  private lastProgress = 0;
  private readonly batch: Record<string, unknown>[] = [];
  private readonly packets: PacketInfo[] = [];
  private readonly worker: ScriptEngine;
  private readonly afterDispatch: () => void;
  private readonly io: RunIo;
  private readonly progress: boolean;

  constructor(worker: ScriptEngine, afterDispatch: () => void, io: RunIo, progress: boolean) {
    this.worker = worker;
    this.afterDispatch = afterDispatch;
    this.io = io;
    this.progress = progress;
  }

  /** Adds an item; true when a batch is full and flush() should be awaited. */
  item(obj: Record<string, unknown>): boolean {
    this.batch.push(obj);
    this.items++;
    return this.batch.length >= 1024;
  }

  packet(p: PacketInfo): boolean {
    this.packets.push({ ...p });
    return this.packets.length >= 4096;
  }

  /** Dispatches what is batched (packets first: they came before the items they carried). */
  flushNow(): void {
    if (this.packets.length > 0) {
      this.worker.dispatchPackets(this.packets);
      this.packets.length = 0;
    }
    if (this.batch.length > 0) {
      this.worker.dispatchItems(this.batch);
      this.batch.length = 0;
    }
    this.afterDispatch();
  }

  async flush(): Promise<void> {
    this.flushNow();
    this.showProgress();
    await new Promise((r) => setImmediate(r));
  }

  showProgress(extra = ''): void {
    if (!this.progress || performance.now() - this.lastProgress < 500) return;
    this.lastProgress = performance.now();
    this.io.stderr.write(`\r${this.items} items (${Math.round(this.items / ((this.lastProgress - this.started) / 1000))}/s)${extra}\x1b[K`);
  }
}

async function feedItems(path: string, feed: Feeder, io: RunIo): Promise<void> {
  let input: NodeJS.ReadableStream;
  if (path === '-') {
    input = io.stdin ?? process.stdin;
  } else {
    const stream = createReadStream(path);
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (err: NodeJS.ErrnoException) => reject(new CliError(`run: cannot read items ${path}: ${err.code ?? err.message}`, 1, { cause: err })));
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
        if (++feed.invalid <= 10) io.stderr.write(`wirescript: ${path}:${lineNo}: skipped, not valid JSON: ${(err as Error).message}\n`);
        continue;
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        if (++feed.invalid <= 10) io.stderr.write(`wirescript: ${path}:${lineNo}: skipped, not a JSON object\n`);
        continue;
      }
      if (feed.item(obj as Record<string, unknown>)) await feed.flush();
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`run: cannot read items ${path} at line ${lineNo + 1}: ${(err as Error).message}`, 1, { cause: err });
  }
}
