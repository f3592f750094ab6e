import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Prometheus's own promtool: it parses the text format as Prometheus does, lints metric names and
 * checks and tests rule files. From Debian's prometheus package (`.ci/run` unpacks it into .tools/).
 */
export const promtool = ['.tools/prometheus/usr/bin/promtool', '/usr/bin/promtool'].find((path) =>
  existsSync(path),
);

/** When promtool is missing: CI fails saying so, elsewhere the suites that need it are skipped. */
export const skipWithoutPromtool = !promtool && !process.env.CI;
if (!promtool) {
  const how =
    'apt-get download prometheus && dpkg-deb -x prometheus_*.deb .tools/prometheus (what .ci/run does)';
  if (process.env.CI) throw new Error(`promtool is missing: ${how}`);
  console.warn(`promtool is missing, skipping the checks that need it: ${how}`);
}

/** Runs promtool with `input` on stdin; its exit code and what it printed. */
export function runPromtool(args: string[], input = ''): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(promtool!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(input);
  });
}
