/**
 * The one shape of every service's main: load the config (a bad value exits 2
 * naming the variable), set up telemetry, start (a service that cannot start
 * exits 1 with one clear line, so its pod restarts with the reason in the
 * log), and on SIGTERM/SIGINT (or when the service finishes on its own) stop
 * taking work, drain, flush telemetry and exit.
 */
import { ConfigError, type TelemetryConfig } from '@wirescript/config';
import { initTelemetry, type Telemetry } from '@wirescript/telemetry';

export interface ServiceApp {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface RunServiceOptions<C extends TelemetryConfig & { replicaId: string }, A extends ServiceApp> {
  name: string;
  env: NodeJS.ProcessEnv;
  /** Loads and validates the configuration; throws ConfigError (or an error `isConfigError` accepts) on bad input. */
  load(env: NodeJS.ProcessEnv): C;
  isConfigError?(err: unknown): boolean;
  create(config: C, telemetry: Telemetry): A;
  /** When the service can finish by itself (a pcap replay): resolves to the exit code. */
  finished?(app: A, config: C): Promise<number> | undefined;
  /** What the log says when it does, e.g. "replay finished". */
  finishedWhy?: string;
}

export async function runService<C extends TelemetryConfig & { replicaId: string }, A extends ServiceApp>(o: RunServiceOptions<C, A>): Promise<void> {
  const say = (line: string) => process.stderr.write(`${o.name}: ${line}\n`);
  let config: C;
  try {
    config = o.load(o.env);
  } catch (err) {
    if (err instanceof ConfigError || o.isConfigError?.(err)) {
      say((err as Error).message);
      process.exit(2);
    }
    throw err;
  }
  const telemetry = await initTelemetry({ serviceName: o.name, serviceInstanceId: config.replicaId, config });
  const app = o.create(config, telemetry);
  try {
    await app.start();
  } catch (err) {
    say((err as Error).message);
    await app.stop().catch(() => {});
    await telemetry.shutdown().catch(() => {});
    process.exit(1);
  }
  let stopping = false;
  const stop = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    say(`${why}, draining`);
    await app.stop();
    await telemetry.shutdown().catch((e: Error) => say(`telemetry flush failed: ${e.message}`));
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop('SIGTERM received', 0));
  process.on('SIGINT', () => void stop('SIGINT received', 0));
  const done = o.finished?.(app, config);
  if (done) await stop(o.finishedWhy ?? 'finished', await done);
}

/** `if (import.meta.main) runMain(main, name)`: an unexpected failure is one line and exit 1. */
export function runMain(main: () => Promise<void>, name: string): void {
  main().catch((err: Error) => {
    process.stderr.write(`${name}: ${err.message}\n`);
    process.exit(1);
  });
}
