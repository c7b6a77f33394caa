export { runCli, HELP, type Io } from './main.ts';
export { CliError } from './errors.ts';
export { runCommand, parseRunArgs, RUN_HELP } from './commands/run.ts';
