import { ConfigError } from '../config.ts';

/** Runs an entry point: a ConfigError prints every problem; any failure exits 1. */
export function runMain(main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      if (typeof code === 'number') process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error instanceof ConfigError ? `herald: ${error.message}` : error);
      process.exit(1);
    },
  );
}
