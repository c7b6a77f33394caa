/** script-runner entry point (see runService: config, telemetry, start, drain on SIGTERM). */
import { loadConfig } from '@wirescript/config';
import { runMain, runService } from '@wirescript/script-host';
import { runnerConfig } from './config.ts';
import { SERVICE, ScriptRunner } from './runner.ts';

export function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return runService({
    name: SERVICE,
    env,
    load: (e) => loadConfig(runnerConfig, e),
    create: (config, telemetry) => new ScriptRunner(config, { tracing: telemetry.exporters.traces.length > 0, meter: telemetry.meter }),
  });
}

if (import.meta.main) runMain(main, SERVICE);
