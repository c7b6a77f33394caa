/**
 * config-sync entry point (see runService): the source is SCRIPTS_DIR or the
 * Kubernetes ConfigMap and Secret; a source that cannot be set up is one clear
 * line and exit 1.
 */
import { loadConfig } from '@wirescript/config';
import { createLogger, runMain, runService } from '@wirescript/script-host';
import { configSyncConfig } from './config.ts';
import { createSource } from './service.ts';
import { ConfigSync, SERVICE } from './sync.ts';

export function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return runService({
    name: SERVICE,
    env,
    load: (e) => loadConfig(configSyncConfig, e),
    create: (config, telemetry) => {
      const log = createLogger(SERVICE, config.logLevel);
      // Source errors (no kubeconfig) surface from start(), as one line.
      let source: ReturnType<typeof createSource> | Error;
      try {
        source = createSource(config, log);
      } catch (err) {
        source = err as Error;
      }
      if (source instanceof Error) {
        const failure = source;
        return { start: () => Promise.reject(failure), stop: () => Promise.resolve() };
      }
      return new ConfigSync(config, { source, log, meter: telemetry.meter });
    },
  });
}

if (import.meta.main) runMain(main, SERVICE);
