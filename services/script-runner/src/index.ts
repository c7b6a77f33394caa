export { ScriptRunner, SERVICE, type RunnerDeps, type RunnerCounters } from './runner.ts';
export { runnerConfig, type RunnerConfig } from './config.ts';
