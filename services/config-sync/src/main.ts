/**
 * config-sync entry point: load config, pick the source (SCRIPTS_DIR or
 * Kubernetes), start, and on SIGTERM/SIGINT stop, publish a last status,
 * drain, flush telemetry, exit 0.
 */
import { ConfigError, loadConfig } from '@wirescript/config';
import { createLogger } from '@wirescript/script-host';
import { initTelemetry } from '@wirescript/telemetry';
import { configSyncConfig } from './config.ts';
import { createSource } from './service.ts';
import { ConfigSync, SERVICE } from './sync.ts';

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config;
  try {
    config = loadConfig(configSyncConfig, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${SERVICE}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(SERVICE, config.logLevel);
  const telemetry = await initTelemetry({ serviceName: SERVICE, serviceInstanceId: config.replicaId, config });
  let sync: ConfigSync;
  try {
    sync = new ConfigSync(config, { source: createSource(config, log), log, meter: telemetry.meter });
    await sync.start();
  } catch (err) {
    // One clear line (missing folder, NATS unreachable, no kubeconfig), not a stack.
    process.stderr.write(`${SERVICE}: ${(err as Error).message}\n`);
    await telemetry.shutdown().catch(() => {});
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal} received, stopping`);
    await sync.stop();
    await telemetry.shutdown().catch((e: Error) => process.stderr.write(`${SERVICE}: telemetry flush failed: ${e.message}\n`));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

if (import.meta.main) {
  main().catch((err: Error) => {
    process.stderr.write(`${SERVICE}: ${err.message}\n`);
    process.exit(1);
  });
}
