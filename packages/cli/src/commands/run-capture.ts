/**
 * `wirescript run --pcap` / `--interface`: the capture pipeline in the same
 * process as the scripts. Items and packet summaries go straight into the
 * worker engine (no NATS).
 */
import { CapturePipeline, LiveCapture, LiveCaptureError, readCaptureFile, CaptureFileError } from '@wirescript/capture';
import { CliError } from '../errors.ts';
import type { Feeder, RunIo } from './run.ts';

function pipelineFor(feed: Feeder, node: string): CapturePipeline {
  return new CapturePipeline({
    node: { name: node, ip: '' },
    worker: node,
    onItem: (it) => { if (feed.item(it.item)) feed.flushNow(); },
    onPacket: (p) => { if (feed.packet(p)) feed.flushNow(); },
  });
}

/** Replays a capture file through the scripts; 1 when the file is corrupt (after what was decoded ran). */
export async function feedPcap(path: string, feed: Feeder, io: RunIo, node: string): Promise<number> {
  const pipeline = pipelineFor(feed, node);
  let frames = 0;
  try {
    await readCaptureFile(path, async (f) => {
      pipeline.onFrame(f);
      // Yield now and then: cron timers and progress.
      if (++frames % 8192 === 0) await feed.flush();
    }, {
      onProgress: (read, total) => feed.showProgress(total ? ` ${Math.floor((read / total) * 100)}% of ${path}` : ''),
    });
  } catch (err) {
    pipeline.end();
    if (err instanceof CaptureFileError) {
      const code = (err.cause as NodeJS.ErrnoException | undefined)?.code;
      if (err.kind === 'io' && err.framesDelivered === 0 && code !== undefined) throw new CliError(`run: cannot read capture ${path}: ${code}`, 1, { cause: err });
      // What was decoded before the damage runs first; then the error (its message names the file and the byte offset).
      await feed.flush();
      io.stderr.write(`wirescript: ${err.message}\n`);
      return 1;
    }
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`run: cannot read capture ${path}: ${code ?? (err as Error).message}`, 1, { cause: err });
  }
  pipeline.end();
  return 0;
}

/** Captures live until Ctrl-C or the duration, then flushes. */
export async function feedInterface(src: { name: string; filter: string; durationS: number }, feed: Feeder, io: RunIo, node: string): Promise<number> {
  const pipeline = pipelineFor(feed, node);
  const live = new LiveCapture({ device: src.name, filter: src.filter, bufferBytes: 64 * 1024 * 1024 });
  try {
    live.start((f) => pipeline.onFrame(f));
  } catch (err) {
    if (err instanceof LiveCaptureError) throw new CliError(`run: ${err.message}`, 1, { cause: err });
    throw err;
  }
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      pipeline.tick(performance.timeOrigin + performance.now());
      feed.flushNow();
      feed.showProgress(` on ${src.name}`);
    }, 100);
    const done = () => {
      clearInterval(timer);
      process.removeListener('SIGINT', done);
      resolve();
    };
    process.once('SIGINT', done);
    if (src.durationS > 0) setTimeout(done, src.durationS * 1000);
  });
  live.stop();
  pipeline.end();
  io.stderr.write('');
  return 0;
}
