/**
 * Builds the console into console/dist (typed operations first, then Vite). With --if-stale it
 * builds only when the build is missing or older than a source, which is how `npm start` and the
 * browser test get a current console without a step of their own (and without loading Vite when
 * the build is current).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const consoleDir = join(root, 'console');
const dist = join(consoleDir, 'dist');
const built = join(dist, 'index.html');
const GENERATED = join(consoleDir, 'src', 'gql');

/**
 * Newest modification time of the console's sources, of the schema its operations are typed by,
 * and of what makes the build (the locked dependencies, codegen's config, this script).
 */
function newestSource(): number {
  const files = [
    join(consoleDir, 'index.html'),
    join(consoleDir, 'vite.config.ts'),
    join(root, 'schema', 'schema.graphql'),
    join(root, 'package-lock.json'),
    join(root, 'codegen.ts'),
    import.meta.filename,
  ];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (path === GENERATED) continue;
      if (entry.isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk(join(consoleDir, 'src'));
  return Math.max(...files.map((file) => statSync(file).mtimeMs));
}

const builtAt = (): number | null => {
  try {
    return statSync(built).mtimeMs;
  } catch {
    return null;
  }
};

function stale(): boolean {
  const at = builtAt();
  return at === null || at < newestSource();
}

if (process.argv.includes('--if-stale') && !stale()) process.exit(0);

console.error(`herald: building the console into ${relative(root, dist)}/`);
// With this process's Node (the bin's shebang would find the machine's, which may be older).
execFileSync(
  process.execPath,
  [
    join(root, 'node_modules', '@graphql-codegen', 'cli', 'esm', 'bin.js'),
    '--config',
    'codegen.ts',
    '--silent',
  ],
  { cwd: root, stdio: 'inherit' },
);
// Started from a test run, NODE_ENV is `test`, and React would be bundled as its development build.
process.env.NODE_ENV = 'production';
const { build } = await import('vite');
// Built beside console/dist and moved into place whole: a running Herald never serves half a build.
const next = `${dist}.tmp-${process.pid}`;
try {
  await build({
    configFile: join(consoleDir, 'vite.config.ts'),
    mode: 'production',
    logLevel: 'warn',
    build: { outDir: next },
  });
  rmSync(dist, { recursive: true, force: true });
  renameSync(next, dist);
} finally {
  rmSync(next, { recursive: true, force: true });
}
