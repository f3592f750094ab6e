import { startApp, type Roles } from '../app.ts';
import { loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { runMain } from './run-main.ts';

/** Starts Herald in the given roles and stops it gracefully on SIGTERM or SIGINT. */
export function start(roles: Roles): void {
  runMain(async () => {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    const app = await startApp(config, roles, logger);
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      const force = setTimeout(() => {
        logger.error('shutdown grace period over; exiting');
        process.exit(1);
      }, config.server.shutdownGraceMs + 5_000);
      force.unref();
      app.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}
