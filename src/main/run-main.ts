import { ConfigError } from '../config.ts';

/** Runs an entry point: a ConfigError prints every problem; any failure exits 1. */
export function runMain(main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      if (typeof code === 'number') process.exitCode = code;
    },
    (error: unknown) => {
      // One clear line for what an operator can fix; the stack only for what looks like a bug.
      if (error instanceof ConfigError) console.error(`herald: ${error.message}`);
      else if (error instanceof Error && error.message.startsWith('cannot reach'))
        console.error(`herald: ${error.message}`);
      else console.error(error);
      process.exit(1);
    },
  );
}
