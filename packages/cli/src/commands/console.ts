/** `wirescript console`: tails the scripts' console output (ws.logs.>) from every replica. */
import { parseArgs } from 'node:util';
import { connectNats, drainAndClose } from '@wirescript/nats';
import { ConsoleLine, decodeMessage, logsFilter } from '@wirescript/proto';
import { CliError } from '../errors.ts';

export const CONSOLE_HELP = `Usage: wirescript console [--nats URL] [--node NAME] [--replica ID] [--script TITLE] [--errors]

Tails console.log/console.error output and script errors of every script-runner
and the hub, as they happen. Ctrl-C stops.

  --nats URL       NATS server (default: $NATS_URL or nats://127.0.0.1:4222)
  --node NAME      Only this node ("hub" for the hub)
  --replica ID     Only this replica
  --script TITLE   Only lines of this script
  --errors         Only errors`;

export function formatConsoleLine(l: ConsoleLine): string {
  const where = l.line > 0 ? `:${l.line}` : '';
  const who = l.scriptTitle ? ` ${l.scriptTitle}${where}` : '';
  return `${new Date(Number(l.timestampMs)).toISOString()} [${l.node}/${l.replica}]${who}${l.level === 'error' ? ' ERROR' : ''}: ${l.text}`;
}

export async function consoleCommand(argv: string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; env?: NodeJS.ProcessEnv; signal?: AbortSignal }): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: { nats: { type: 'string' }, node: { type: 'string' }, replica: { type: 'string' }, script: { type: 'string' }, errors: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (err) {
    throw new CliError(`console: ${(err as Error).message} (see wirescript console --help)`);
  }
  if (v.help) {
    io.stdout.write(`${CONSOLE_HELP}\n`);
    return 0;
  }
  const url = v.nats ?? io.env?.NATS_URL ?? 'nats://127.0.0.1:4222';
  let nc;
  try {
    nc = await connectNats({ url, name: 'wirescript-console', log: () => {} });
  } catch (err) {
    throw new CliError(`console: ${(err as Error).message}`, 1, { cause: err });
  }
  const sub = nc.subscribe(logsFilter(v.node, v.replica));
  const stop = () => sub.unsubscribe();
  io.signal?.addEventListener('abort', stop);
  process.once('SIGINT', stop);
  for await (const msg of sub) {
    let line: ConsoleLine;
    try {
      line = decodeMessage(ConsoleLine, msg.data, 'wirescript.v1.ConsoleLine');
    } catch (err) {
      io.stderr.write(`wirescript console: undecodable message on ${msg.subject}: ${(err as Error).message}\n`);
      continue;
    }
    if (v.script && line.scriptTitle !== v.script) continue;
    if (v.errors && line.level !== 'error') continue;
    if (line.level === 'clear') continue;
    io.stdout.write(`${formatConsoleLine(line)}\n`);
  }
  process.removeListener('SIGINT', stop);
  await drainAndClose(nc);
  return 0;
}
