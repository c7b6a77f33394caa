/**
 * capture entry point: load config, start, and on SIGTERM/SIGINT (or at the
 * end of a pcap replay) stop capturing, publish what is queued, exit 0.
 */
import { ConfigError } from '@wirescript/config';
import { initTelemetry } from '@wirescript/telemetry';
import { CaptureConfigError, loadCaptureConfig } from './config.ts';
import { CaptureService, SERVICE } from './service.ts';

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config;
  try {
    config = loadCaptureConfig(env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof CaptureConfigError) {
      process.stderr.write(`${SERVICE}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const telemetry = await initTelemetry({ serviceName: SERVICE, serviceInstanceId: config.replicaId, config });
  const service = new CaptureService(config);
  try {
    await service.start();
  } catch (err) {
    // A capture that cannot start (no capability, bad interface or filter, NATS unreachable) must exit, so the pod restarts with the error in its log.
    process.stderr.write(`${SERVICE}: cannot start: ${(err as Error).message}\n`);
    await service.stop().catch(() => {});
    await telemetry.shutdown().catch(() => {});
    process.exit(1);
  }
  let stopping = false;
  const stop = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${SERVICE}: ${why}, draining\n`);
    await service.stop();
    await telemetry.shutdown().catch((e: Error) => process.stderr.write(`${SERVICE}: telemetry flush failed: ${e.message}\n`));
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop('SIGTERM received', 0));
  process.on('SIGINT', () => void stop('SIGINT received', 0));
  if (config.capturePcap && config.exitAfterReplay) {
    await service.replayDone;
    await stop('replay finished', service.replayError ? 1 : 0);
  }
}

if (import.meta.main) {
  main().catch((err: Error) => {
    process.stderr.write(`${SERVICE}: ${err.message}\n`);
    process.exit(1);
  });
}
