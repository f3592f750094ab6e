import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.ts';

/** Herald entry points (src/main/<name>.ts) run as child processes, their JSON log lines collected. */

const entry = (name: string) => fileURLToPath(new URL(`../../src/main/${name}.ts`, import.meta.url));

export interface Running {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string;
  exit: Promise<number | null>;
}

/** Starts an entry point with only `env` (and PATH) as its environment. */
export function run(name: string, env: Record<string, string>): Running {
  const child = spawn(process.execPath, [entry(name)], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const running: Running = {
    child,
    lines: [],
    stderr: '',
    exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) running.lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr.on('data', (chunk: Buffer) => (running.stderr += chunk.toString()));
  return running;
}

/** The process's "herald started" log line, once it is written. */
export const started = (p: Running) =>
  waitFor(() => p.lines.find((l) => l.msg === 'herald started') as { url?: string } | undefined, {
    timeoutMs: 30_000,
    what: 'herald started',
  });
