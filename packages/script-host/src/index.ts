export { NatsEngineOutput, type NatsOutputOptions, type OutputCounters } from './nats-output.ts';
export { ScriptSetWatcher, type ScriptSetWatcherEvents } from './script-set.ts';
export { StatusPublisher, buildStatus, type StatusSource } from './status.ts';
export { serveJobControl, applyJobControl, listJobs, type JobControlIdentity } from './job-control.ts';
export { createLogger, type Logger, type LogLevel } from './log.ts';
export { HealthServer, HealthError, type HealthCheck } from './health.ts';
export { runService, runMain, type ServiceApp, type RunServiceOptions } from './service-main.ts';
export { connectServiceNats, type ServiceNats, type ConnectServiceNatsOptions } from './service-nats.ts';
