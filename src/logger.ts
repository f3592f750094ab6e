import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs to stdout; `toStderr` for commands whose stdout is their output. */
export function createLogger(level: string, options: { toStderr?: boolean } = {}): Logger {
  return pino({ level, base: { service: 'herald' } }, pino.destination(options.toStderr ? 2 : 1));
}
