/**
 * Host side of jobs.*: cron schedules (croner, 6 fields, seconds first). The
 * job's function lives in the VM; firing a job asks the engine to run it.
 */
import { Cron } from 'croner';
import type { JobsFacade } from '../helpers/types.ts';
import type { JobEvent } from '../output.ts';

export interface ScheduledJob {
  tag: string;
  cron: string;
  limit: number;
  runs: number;
  slot: number;
  timer: Cron;
}

export interface JobSchedulerDeps {
  /** Runs the job now (the engine calls into the VM). */
  fire(tag: string): void;
  /** The job's VM function must be forgotten too. */
  dropFromVm(tag: string): void;
  script(slot: number): { title: string; index: number } | undefined;
  emit(e: JobEvent): void;
}

const CRON_HELP = '6 fields: second minute hour day-of-month month day-of-week';

/** The job reached its run limit (0: no limit). */
function done(job: ScheduledJob): boolean {
  return job.limit > 0 && job.runs >= job.limit;
}

export class JobScheduler implements JobsFacade {
  private readonly jobs = new Map<string, ScheduledJob>();
  private running = true;
  private readonly deps: JobSchedulerDeps;

  constructor(deps: JobSchedulerDeps) {
    this.deps = deps;
  }

  get size(): number {
    return this.jobs.size;
  }

  get(tag: string): ScheduledJob | undefined {
    return this.jobs.get(tag);
  }

  tags(): string[] {
    return [...this.jobs.keys()];
  }

  schedule(slot: number, tag: string, cron: string, limit: number): void {
    if (!Number.isInteger(limit) || limit < 0) throw new TypeError(`jobs.schedule: limit must be a whole number >= 0, got ${limit}`);
    const fields = cron.trim().split(/\s+/).length;
    if (fields !== 6) throw new TypeError(`jobs.schedule: cron "${cron}" has ${fields} fields; expected ${CRON_HELP}`);
    let timer: Cron;
    try {
      timer = new Cron(cron, { mode: '6-part', paused: !this.running, unref: true }, () => this.deps.fire(tag));
    } catch (err) {
      throw new TypeError(`jobs.schedule: invalid cron "${cron}" (${CRON_HELP}): ${(err as Error).message}`, { cause: err });
    }
    const old = this.jobs.get(tag);
    if (old) old.timer.stop(); // same tag: the new schedule replaces the old one
    const job: ScheduledJob = { tag, cron, limit, runs: 0, slot, timer };
    this.jobs.set(tag, job);
    this.emit(job, 'scheduled');
  }

  /** Called by the engine after each run: counts it. */
  ran(tag: string): ScheduledJob | undefined {
    const job = this.jobs.get(tag);
    if (job) job.runs++;
    return job;
  }

  /** Called by the engine once a run is reported: retires the job at its limit (and drops it from the VM). */
  retireIfDone(tag: string): void {
    const job = this.jobs.get(tag);
    if (job && done(job)) {
      this.removeJob(job);
      this.deps.dropFromVm(tag);
    }
  }

  emit(job: ScheduledJob, event: JobEvent['event'], error?: string): void {
    const s = this.deps.script(job.slot);
    const next = this.jobs.has(job.tag) && this.running && !done(job) ? job.timer.nextRun() : null;
    this.deps.emit({
      tag: job.tag, cron: job.cron, limit: job.limit, event, runs: job.runs,
      ...(error !== undefined ? { error } : {}),
      ...(next ? { nextRunMs: next.getTime() } : {}),
      title: s?.title ?? '', scriptIndex: s?.index ?? -1, timestampMs: Date.now(),
    });
  }

  private removeJob(job: ScheduledJob): void {
    job.timer.stop();
    this.jobs.delete(job.tag);
    this.emit(job, 'removed');
  }

  remove(tag: string): boolean {
    const job = this.jobs.get(tag);
    if (!job) return false;
    this.removeJob(job);
    return true;
  }

  removeAll(): number {
    const n = this.jobs.size;
    for (const job of [...this.jobs.values()]) this.removeJob(job);
    return n;
  }

  /** Removes the jobs a script scheduled (it was unloaded). */
  removeBySlot(slot: number): void {
    for (const job of [...this.jobs.values()]) if (job.slot === slot) this.removeJob(job);
  }

  list(): string {
    return JSON.stringify([...this.jobs.values()].map((j) => {
      const next = this.running ? j.timer.nextRun() : null;
      return { tag: j.tag, cron: j.cron, limit: j.limit, runs: j.runs, nextRun: next ? next.toISOString() : null, script: this.deps.script(j.slot)?.title ?? '' };
    }));
  }

  /** Runs the job right after the current call (never re-entrantly inside it). */
  run(tag: string): boolean {
    if (!this.jobs.has(tag)) return false;
    setImmediate(() => { if (this.jobs.has(tag)) this.deps.fire(tag); });
    return true;
  }

  runAll(): number {
    const tags = this.tags();
    setImmediate(() => { for (const t of tags) if (this.jobs.has(t)) this.deps.fire(t); });
    return tags.length;
  }

  start(): void {
    this.running = true;
    for (const j of this.jobs.values()) j.timer.resume();
  }

  stop(): void {
    this.running = false;
    for (const j of this.jobs.values()) j.timer.pause();
  }

  isRunning(): boolean {
    return this.running;
  }

  /** Stops every timer for good (engine close); emits nothing. */
  close(): void {
    for (const j of this.jobs.values()) j.timer.stop();
    this.jobs.clear();
  }
}
