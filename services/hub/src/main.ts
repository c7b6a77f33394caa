/** hub entry point (see runService: config, telemetry, start, drain on SIGTERM). */
import { loadConfig } from '@wirescript/config';
import { runMain, runService } from '@wirescript/script-host';
import { hubConfig } from './config.ts';
import { Hub, SERVICE } from './hub.ts';

export function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return runService({
    name: SERVICE,
    env,
    load: (e) => loadConfig(hubConfig, e),
    create: (config, telemetry) => new Hub(config, { tracing: telemetry.exporters.traces.length > 0, meter: telemetry.meter }),
  });
}

if (import.meta.main) runMain(main, SERVICE);
