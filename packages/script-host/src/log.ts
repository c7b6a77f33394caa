/** A minimal leveled logger to stderr (one line per event); services never log secrets through it. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function createLogger(service: string, level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Logger {
  const at = ORDER[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string) => {
    if (ORDER[lvl] >= at) write(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${service}: ${msg}`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
  };
}
