import { start } from './start.ts';

start({ api: true, worker: true });
