/**
 * jobs.*: cron jobs (6 fields, seconds first). The job function and its extra
 * arguments stay in the VM (D.jobs); the schedule lives on the host.
 */
import { expectString, type HelperModule } from './types.ts';

export const jobsHelper: HelperModule = {
  name: 'jobs',
  host: (h) => ({
    jobs_schedule(slot, tag, cron, limit) {
      h.jobs.schedule(Number(slot), expectString(tag, 'jobs.schedule: tag'), expectString(cron, 'jobs.schedule: cron'), Number(limit));
      return undefined;
    },
    jobs_remove(tag) { return h.jobs.remove(expectString(tag, 'jobs.remove(tag): tag')); },
    jobs_removeAll() { return h.jobs.removeAll(); },
    jobs_list() { return h.jobs.list(); },
    jobs_run(tag) { return h.jobs.run(expectString(tag, 'jobs.run(tag): tag')); },
    jobs_runAll() { return h.jobs.runAll(); },
    jobs_start() { h.jobs.start(); return undefined; },
    jobs_stop() { h.jobs.stop(); return undefined; },
    jobs_isRunning() { return h.jobs.isRunning(); },
  }),
  guest: `(function (host, D, G, cfg) {
    var scheduler = Object.freeze({
      start: function () { host.jobs_start(); },
      stop: function () { host.jobs_stop(); },
      isRunning: function () { return host.jobs_isRunning(); }
    });
    D.defineGlobal('jobs', {
      schedule: function (tag, cron, fn, limit) {
        if (typeof tag !== 'string' || tag === '') throw new TypeError('jobs.schedule(tag, cron, fn, limit, ...args): tag must be a non-empty string');
        if (typeof cron !== 'string') throw new TypeError('jobs.schedule(tag, cron, fn, limit, ...args): cron must be a string');
        if (typeof fn !== 'function') throw new TypeError('jobs.schedule(tag, cron, fn, limit, ...args): fn must be a function');
        if (limit === undefined || limit === null) limit = 0;
        if (typeof limit !== 'number' || limit < 0 || limit % 1 !== 0) throw new TypeError('jobs.schedule(tag, cron, fn, limit, ...args): limit must be a whole number >= 0');
        var args = [];
        for (var i = 4; i < arguments.length; i++) args[i - 4] = arguments[i];
        host.jobs_schedule(D.cur, tag, cron, limit);
        D.jobs[tag] = { fn: fn, args: args, slot: D.cur };
      },
      remove: function (tag) { var r = host.jobs_remove(tag); delete D.jobs[tag]; return r; },
      removeAll: function () { var n = host.jobs_removeAll(); D.jobs = {}; return n; },
      list: function () { return D.parse(host.jobs_list()); },
      run: function (tag) { return host.jobs_run(tag); },
      runAll: function () { return host.jobs_runAll(); },
      scheduler: scheduler
    });
  })`,
};
