/**
 * Answers job-control requests on ws.control.jobs (dashboard-api scatters one
 * request; every matching replica replies once). Non-matching replicas stay
 * silent; bad requests get a reply with `error` set.
 */
import type { NatsConnection, Subscription } from '@wirescript/nats';
import {
  JOBS_CONTROL_SUBJECT, JobControlReply, JobControlRequest, decodeMessage, encodeMessage, type Job,
} from '@wirescript/proto';
import type { ScriptEngine } from '@wirescript/engine';

export interface JobControlIdentity {
  service: 'script-runner' | 'hub';
  node: string;
  replica: string;
}

interface ListedJob { tag: string; cron: string; limit: number; runs: number; nextRun: string | null; script: string; failures?: number; lastError?: string; lastRunMs?: number; scriptIndex?: number }

export function listJobs(engine: ScriptEngine, id: JobControlIdentity): Job[] {
  const list = JSON.parse(engine.jobs.list()) as ListedJob[];
  return list.map((j) => ({
    node: id.node, replica: id.replica, scriptTitle: j.script, scriptIndex: j.scriptIndex ?? -1, tag: j.tag, cron: j.cron,
    limit: j.limit, runs: j.runs, failures: j.failures ?? 0, lastError: j.lastError ?? '', lastRunMs: j.lastRunMs ?? 0,
    nextRunMs: j.nextRun ? Date.parse(j.nextRun) : 0,
  }));
}

/** Applies one request to the engine's scheduler; returns the reply, or null when it is not for us. */
export function applyJobControl(engine: ScriptEngine, id: JobControlIdentity, req: JobControlRequest): JobControlReply | null {
  if ((req.service && req.service !== id.service) || (req.node && req.node !== id.node) || (req.replica && req.replica !== id.replica)) return null;
  let affected = 0;
  let error = '';
  switch (req.op) {
    case 'list': break;
    case 'run':
      if (req.tag) { if (engine.jobs.run(req.tag)) affected = 1; else error = `no job tagged "${req.tag}"`; }
      else affected = engine.jobs.runAll();
      break;
    case 'remove':
      if (req.tag) { if (engine.jobs.remove(req.tag)) affected = 1; else error = `no job tagged "${req.tag}"`; }
      else affected = engine.jobs.removeAll();
      break;
    case 'start': engine.jobs.start(); break;
    case 'stop': engine.jobs.stop(); break;
    default: error = `unknown op "${req.op}" (expected list, run, remove, start or stop)`;
  }
  return JobControlReply.fromPartial({
    service: id.service, node: id.node, replica: id.replica, jobs: listJobs(engine, id),
    schedulerRunning: engine.jobs.isRunning(), affected, error,
  });
}

export function serveJobControl(nc: NatsConnection, engine: ScriptEngine, id: JobControlIdentity): Subscription {
  return nc.subscribe(JOBS_CONTROL_SUBJECT, {
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      let reply: JobControlReply | null;
      try {
        reply = applyJobControl(engine, id, decodeMessage(JobControlRequest, msg.data, 'wirescript.v1.JobControlRequest'));
      } catch (e) {
        reply = JobControlReply.fromPartial({ ...id, error: `bad request: ${(e as Error).message}` });
      }
      if (reply) msg.respond(encodeMessage(JobControlReply, reply));
    },
  });
}
