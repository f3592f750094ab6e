import { start } from './start.ts';

start({ api: false, worker: true });
