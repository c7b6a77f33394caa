/**
 * The `wirescript` command line: one entry point for the offline runner,
 * each service, and the tools around them.
 */
import { CliError } from './errors.ts';

export const HELP = `wirescript: scriptable network-traffic automation (Kubeshark-compatible scripting)

Usage: wirescript <command> [options]

Commands:
  run <script.js>... --items F.jsonl   Run scripts on items in one process (no NATS)
  run <script.js>... --pcap F          ... on a pcap/pcapng capture
  run <script.js>... --interface I     ... on live traffic (--filter BPF, --duration S)
  capture                              Run the capture service (config from env, flags override)
  script-runner                        Run the script-runner service (config from env)
  hub                                  Run the hub: onHubAction from the stream, jobs, pod watch -> ws.pods.*, IP -> pod map
  config-sync                          Run the config-sync service: ConfigMap/Secret or a folder -> KV
  scripts --source DIR                 Sync a folder of *.js scripts into the ConfigMap (keeps watching)
  console                              Tail the scripts' console output from NATS

Run "wirescript <command> --help" for a command's options.`;

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin?: NodeJS.ReadableStream;
  env?: NodeJS.ProcessEnv;
  /** Aborting stops a long-running command (what Ctrl-C does), for tests. */
  signal?: AbortSignal;
}

/** Runs a command; resolves to its exit code, or 'running' for a long-running service. */
export async function runCli(argv: string[], io: Io): Promise<number | 'running'> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(`${HELP}\n`);
        return cmd === undefined ? 2 : 0;
      case 'run': {
        const { runCommand } = await import('./commands/run.ts');
        return await runCommand(rest, io);
      }
      case 'script-runner':
      case 'hub':
      case 'config-sync':
      case 'capture': {
        const { serviceCommand } = await import('./commands/service.ts');
        return await serviceCommand(cmd, rest, io);
      }
      case 'scripts': {
        const { scriptsCommand } = await import('./commands/scripts.ts');
        return await scriptsCommand(rest, io);
      }
      case 'console': {
        const { consoleCommand } = await import('./commands/console.ts');
        return await consoleCommand(rest, io);
      }
      default:
        throw new CliError(`unknown command "${cmd}" (see wirescript --help)`);
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`wirescript: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
