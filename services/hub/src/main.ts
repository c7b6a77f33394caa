/**
 * hub entry point: load config, start, and on SIGTERM/SIGINT stop taking
 * work, drain, flush telemetry, exit 0.
 */
import { ConfigError, loadConfig } from '@wirescript/config';
import { initTelemetry } from '@wirescript/telemetry';
import { hubConfig } from './config.ts';
import { Hub, SERVICE } from './hub.ts';

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config;
  try {
    config = loadConfig(hubConfig, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${SERVICE}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const telemetry = await initTelemetry({ serviceName: SERVICE, serviceInstanceId: config.replicaId, config });
  const hub = new Hub(config, { tracing: telemetry.exporters.traces.length > 0, meter: telemetry.meter });
  await hub.start();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${SERVICE}: ${signal} received, draining\n`);
    await hub.stop();
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
