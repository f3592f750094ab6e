import { pino, type Logger } from 'pino';

export interface LogLine {
  level: number;
  msg: string;
  err?: { message: string };
  [field: string]: unknown;
}

/** A logger that keeps its lines, for tests of what Herald logs. */
export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}
