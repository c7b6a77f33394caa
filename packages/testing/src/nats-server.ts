import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export class NatsServerNotFoundError extends Error {
  override readonly name = 'NatsServerNotFoundError';
}

export class NatsServerStartError extends Error {
  override readonly name = 'NatsServerStartError';
}

const DEFAULT_BIN = '/usr/sbin/nats-server';
const INSTALL_HINT = 'install it with `apt-get install nats-server` or point NATS_SERVER_BIN at the binary';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the nats-server binary: `NATS_SERVER_BIN`, then /usr/sbin/nats-server,
 * then `nats-server` on PATH. Throws NatsServerNotFoundError saying how to install it.
 */
export function findNatsServer(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const explicit = env.NATS_SERVER_BIN?.trim();
  if (explicit) {
    if (isExecutable(explicit)) return explicit;
    throw new NatsServerNotFoundError(`NATS_SERVER_BIN=${explicit} is not an executable file; ${INSTALL_HINT}`);
  }
  if (isExecutable(DEFAULT_BIN)) return DEFAULT_BIN;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  throw new NatsServerNotFoundError(`nats-server binary not found (looked at NATS_SERVER_BIN, ${DEFAULT_BIN} and PATH); ${INSTALL_HINT}`);
}

/** A TCP port that was free on `host` a moment ago (the OS picked it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, resolve);
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface StartNatsServerOptions {
  /** Enable JetStream with a temporary store dir (default true: KV and streams need it). */
  jetstream?: boolean;
  /** Extra command-line arguments for nats-server. */
  args?: string[];
  /** Fixed port; a free one is picked when omitted. */
  port?: number;
  /** Binary to run; found with `findNatsServer(env)` when omitted. */
  bin?: string;
  /** Where `NATS_SERVER_BIN` and `PATH` are read from (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** How long to wait for the server to accept clients (ms, default 10000). */
  startTimeoutMs?: number;
}

export interface NatsServer extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** JetStream store dir (kept across restart() and kill(), removed by stop()). */
  readonly storeDir: string;
  /** Pid of the current process, undefined while it is down. */
  readonly pid: number | undefined;
  /** The last lines the server logged, for failure messages. */
  logs(): string;
  /** SIGTERM, wait for exit, remove the store dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), wait for exit; the store dir is kept so restart() can recover it. */
  kill(): Promise<void>;
  /** Stop if running, then start again on the same port with the same store dir. */
  restart(): Promise<void>;
}

const MAX_LOG_LINES = 200;
const live = new Set<{ child: ChildProcess | undefined; storeDir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that crashes or forgets stop() must not leave servers and temp dirs behind.
  process.once('exit', () => {
    for (const s of live) {
      s.child?.kill('SIGKILL');
      rmSync(s.storeDir, { recursive: true, force: true });
    }
  });
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Resolves once the server sends its INFO line, i.e. accepts clients (and reports JetStream if asked). */
async function probe(port: number, wantJetStream: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      if (!line.startsWith('INFO ')) return done(false);
      try {
        const info = JSON.parse(line.slice(5)) as { jetstream?: boolean };
        done(!wantJetStream || info.jetstream === true);
      } catch {
        done(false);
      }
    });
  });
}

/**
 * Starts a real nats-server on 127.0.0.1 and a free port (JetStream on, with a
 * temporary store dir), and resolves once it accepts clients. Use with
 * `await using srv = await startNatsServer()` or call `stop()`.
 */
export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServer> {
  const bin = opts.bin ?? findNatsServer(opts.env);
  const jetstream = opts.jetstream ?? true;
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const storeDir = await mkdtemp(path.join(os.tmpdir(), 'wirescript-nats-'));
  const entry: { child: ChildProcess | undefined; storeDir: string } = { child: undefined, storeDir };
  live.add(entry);
  installExitHook();

  let port = opts.port ?? (await freePort());
  let logLines: string[] = [];
  let stopped = false;

  const launch = async (): Promise<void> => {
    const args = ['-a', '127.0.0.1', '-p', String(port), ...(jetstream ? ['-js', '-sd', storeDir] : []), ...(opts.args ?? [])];
    logLines = [];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    entry.child = child;
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
    });
    let partial = '';
    const onData = (d: Buffer) => {
      const lines = (partial + d.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      logLines.push(...lines);
      if (logLines.length > MAX_LOG_LINES) logLines.splice(0, logLines.length - MAX_LOG_LINES);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);

    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnError) {
        entry.child = undefined;
        const code = (spawnError as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EACCES') throw new NatsServerNotFoundError(`cannot run ${bin} (${code}); ${INSTALL_HINT}`, { cause: spawnError });
        throw new NatsServerStartError(`cannot run ${bin}: ${spawnError.message}`, { cause: spawnError });
      }
      if (child.exitCode !== null || child.signalCode !== null) {
        entry.child = undefined;
        throw new NatsServerStartError(
          `${bin} exited (${child.exitCode ?? child.signalCode}) before accepting clients on port ${port}:\n${[...logLines, partial].join('\n').trim()}`,
        );
      }
      if (await probe(port, jetstream)) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await waitExit(child);
        entry.child = undefined;
        throw new NatsServerStartError(`${bin} did not accept clients on port ${port} within ${timeoutMs}ms:\n${logLines.join('\n').trim()}`);
      }
      await sleep(25);
    }
  };

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const child = entry.child;
    if (!child) return;
    child.kill(signal);
    const exited = waitExit(child);
    // nats-server may take a moment on SIGTERM (JetStream flush); never hang a test on it.
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    entry.child = undefined;
  };

  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await launch();
        break;
      } catch (err) {
        // Another process may grab the port between freePort() and the server's bind; pick another.
        const raced = err instanceof NatsServerStartError && /address already in use/i.test(err.message);
        if (!raced || opts.port !== undefined || attempt >= 3) throw err;
        port = await freePort();
      }
    }
  } catch (err) {
    live.delete(entry);
    await rm(storeDir, { recursive: true, force: true });
    throw err;
  }

  const server: NatsServer = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    get pid() {
      return entry.child?.pid;
    },
    logs: () => logLines.join('\n'),
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate('SIGTERM');
      live.delete(entry);
      await rm(storeDir, { recursive: true, force: true });
    },
    async kill() {
      await terminate('SIGKILL');
    },
    async restart() {
      if (stopped) throw new NatsServerStartError('restart() after stop(): the store dir is gone; start a new server');
      await terminate('SIGTERM');
      await launch();
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  return server;
}
