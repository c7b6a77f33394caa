/**
 * capture entry point (see runService): a capture that cannot start (no
 * capability, bad interface or filter, NATS unreachable) exits 1; a pcap
 * replay exits once everything is published (EXIT_AFTER_REPLAY), 1 if the
 * file was damaged.
 */
import { runMain, runService } from '@wirescript/script-host';
import { CaptureConfigError, loadCaptureConfig } from './config.ts';
import { CaptureService, SERVICE } from './service.ts';

export function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return runService({
    name: SERVICE,
    env,
    load: loadCaptureConfig,
    isConfigError: (err) => err instanceof CaptureConfigError,
    create: (config) => new CaptureService(config),
    finished: (service, config) => (config.capturePcap && config.exitAfterReplay
      ? service.replayDone.then(() => (service.replayError ? 1 : 0))
      : undefined),
    finishedWhy: 'replay finished',
  });
}

if (import.meta.main) runMain(main, SERVICE);
