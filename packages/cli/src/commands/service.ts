/**
 * `wirescript script-runner` / `wirescript capture`: one service in the
 * foreground (what a container runs). Configuration comes from environment
 * variables; the flags below override them.
 */
import { parseArgs } from 'node:util';
import { CliError } from '../errors.ts';

export const SERVICE_HELP: Record<string, string> = {
  'script-runner': `Usage: wirescript script-runner

Runs the script-runner service: takes items from NATS (queue group), runs the
active scripts (from the ws_scripts KV bucket), publishes console lines, hub
actions, job events and replica status. Configured by environment variables
(NATS_URL, HOOK_TIMEOUT, ITEM_QUEUE_CAPACITY, ...: see the README). Stops
cleanly on SIGTERM/SIGINT.`,
  'config-sync': `Usage: wirescript config-sync [--dir DIR]

Runs the config-sync service: follows the Kubeshark ConfigMap
(kubeshark-config-map: SCRIPTING_SCRIPTS, SCRIPTING_ACTIVE_SCRIPTS) and the
Secret (kubeshark-secret: SCRIPTING_ENV), or a folder of *.js files, validates
every script and writes the active set and its env to the ws_scripts KV bucket
that script-runners and the hub watch. Configured by environment variables
(NATS_URL, CONFIGMAP_NAME, CONFIGMAP_NAMESPACE, SECRET_NAME, KUBECONFIG,
SCRIPTS_DIR, ...: see the README); flags override them:
  --dir DIR          SCRIPTS_DIR: a folder of *.js scripts instead of Kubernetes
Stops cleanly on SIGTERM/SIGINT.`,
  hub: `Usage: wirescript hub

Runs the hub (one replica): consumes hub actions from the JetStream stream
WS_HUB_ACTIONS (durable consumer "hub", acknowledged after onHubAction ran, so
a restart loses none), runs the active scripts in hub mode (utils.nodeName()
is "hub": onHubAction, onPodEvent, jobs), and, with Kubernetes configured
(in a cluster, or KUBECONFIG), watches pods: publishes pod events on
ws.pods.<namespace> and keeps the IP -> pod map (KV ws_pods) capture uses.
Configured by environment variables (NATS_URL, POD_WATCH, POD_NAMESPACES,
KUBECONFIG, ACTION_MAX_IN_FLIGHT, ...: see the README). Stops cleanly on
SIGTERM/SIGINT.`,
  capture: `Usage: wirescript capture [--interface NAME] [--filter BPF] [--pcap FILE] [--speed max|recorded|N]

Runs the capture service: live capture (or a pcap/pcapng replay) -> TCP/UDP
reassembly -> HTTP/1, HTTP/2, gRPC, DNS and Redis dissectors -> items on
ws.items.<node>.<protocol> and packet summaries on ws.packets.<node>.
Configured by environment variables (NATS_URL, CAPTURE_INTERFACE, ...: see the
README); flags override them:
  --interface NAME   CAPTURE_INTERFACE (default "any")
  --filter BPF       CAPTURE_FILTER
  --pcap FILE        CAPTURE_PCAP: replay this file instead of capturing live
  --speed S          REPLAY_SPEED: max, recorded or a multiplier
Stops cleanly on SIGTERM/SIGINT; a replay exits when the file is published.`,
};

export async function serviceCommand(name: 'script-runner' | 'capture' | 'config-sync' | 'hub', argv: string[], io: { stdout: NodeJS.WritableStream; env?: NodeJS.ProcessEnv }): Promise<number | 'running'> {
  let v;
  try {
    v = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: name === 'capture'
        ? { interface: { type: 'string' }, filter: { type: 'string' }, pcap: { type: 'string' }, speed: { type: 'string' }, help: { type: 'boolean', short: 'h' } }
        : name === 'config-sync'
          ? { dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } }
          : { help: { type: 'boolean', short: 'h' } },
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new CliError(`${name}: ${(err as Error).message} (configure it with environment variables; see --help)`);
  }
  if (v.help) {
    io.stdout.write(`${SERVICE_HELP[name]}\n`);
    return 0;
  }
  const env = { ...(io.env ?? process.env) };
  const flagEnv: Record<string, string> = { interface: 'CAPTURE_INTERFACE', filter: 'CAPTURE_FILTER', pcap: 'CAPTURE_PCAP', speed: 'REPLAY_SPEED', dir: 'SCRIPTS_DIR' };
  for (const [flag, variable] of Object.entries(flagEnv)) if (typeof v[flag] === 'string') env[variable] = v[flag] as string;
  if (name === 'capture') {
    const { main } = await import('@wirescript/capture/main');
    await main(env);
  } else if (name === 'hub') {
    const { main } = await import('@wirescript/hub/main');
    await main(env);
  } else if (name === 'config-sync') {
    const { main } = await import('@wirescript/config-sync/main');
    await main(env);
  } else {
    const { main } = await import('@wirescript/script-runner/main');
    await main(env);
  }
  return 'running';
}
