/**
 * Summarises a V8 CPU profile (node --cpu-prof; BENCH_CPU_PROF=<dir> for the bench's Herald processes): self
 * time by package (or Herald's own source, or node internals) and by function, leaving out the
 * first `skip` seconds (start-up, seeding) when given.
 * Usage: node bench/profile.ts <file.cpuprofile> [rows] [skip]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, rows = '25', skip = '0'] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/profile.ts <file.cpuprofile> [rows] [skip]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));

/** `node_modules/@scope/name` or `node_modules/name`, `src/<dir>`, `node:<internal>`, or the bare label. */
function where(url: string, functionName: string): string {
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (module) return module;
  const own = /\/(src|bench)\/(.+)$/.exec(url);
  if (own) return `${own[1]}/${own[2]!.split('/')[0]}`;
  if (url.startsWith('node:')) return url;
  return url || `(${functionName || 'anonymous'})`;
}

const packages = new Map<string, number>();
const functions = new Map<string, number>();
let total = 0;
let elapsed = 0;
profile.samples.forEach((id, i) => {
  const micros = profile.timeDeltas[i] ?? 0;
  elapsed += micros;
  if (elapsed < Number(skip) * 1e6) return;
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const pkg = where(url, functionName);
  const fn = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')}:${lineNumber + 1}` : ''}`;
  packages.set(pkg, (packages.get(pkg) ?? 0) + micros);
  functions.set(fn, (functions.get(fn) ?? 0) + micros);
  total += micros;
});

const table = (title: string, counts: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, micros] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, Number(rows))) {
    console.log(
      `${((micros / total) * 100).toFixed(1).padStart(5)} %  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}`,
    );
  }
};
console.log(`${(total / 1000).toFixed(0)} ms sampled`);
table('self time by package', packages);
table('self time by function', functions);
