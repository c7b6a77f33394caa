/** `wirescript script-runner`: runs one service in the foreground (what a container runs). */
import { main as scriptRunnerMain } from '@wirescript/script-runner/main';

export const SERVICE_HELP = `Usage: wirescript script-runner

Runs the script-runner service: takes items from NATS (queue group), runs the
active scripts (from the ws_scripts KV bucket), publishes console lines, hub
actions, job events and replica status. Configured by environment variables
(NATS_URL, HOOK_TIMEOUT, ITEM_QUEUE_CAPACITY, ...: see the README). Stops
cleanly on SIGTERM/SIGINT.`;

export async function serviceCommand(name: string, argv: string[], io: { stdout: NodeJS.WritableStream }): Promise<number | 'running'> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(`${SERVICE_HELP}\n`);
    return 0;
  }
  if (argv.length > 0) {
    const { CliError } = await import('../errors.ts');
    throw new CliError(`${name}: unexpected argument "${argv[0]}" (configure it with environment variables; see --help)`);
  }
  await scriptRunnerMain();
  return 'running';
}
