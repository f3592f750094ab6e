import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites share one database and one NATS prefix per run; each test makes its own data.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
