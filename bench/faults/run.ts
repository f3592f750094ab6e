/**
 * The fault suite: Herald under a constant publishEvent load while a fault hits it, then the ledger
 * of every accepted event. Prints a table; exits 1 when a ledger shows a lost delivery, does not
 * hold, or a run could not finish. Usage: npm run faults [-- worker-kill nats-restart …]
 */
import { round } from '../lib/measure.ts';
import { faults } from './faults.ts';
import { load, type FaultRun } from './under-load.ts';

const seconds = (ms: number) => (Number.isFinite(ms) ? String(round(ms / 1000)) : '—');

function verdict(run: FaultRun): string {
  if (run.lost > 0) return 'LOST';
  return run.problems.length > 0 ? 'VOID' : 'ok';
}

const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(faults);
for (const name of wanted) {
  if (!faults[name]) throw new Error(`no fault ${name}; there are ${Object.keys(faults).join(', ')}`);
}

const suiteStart = performance.now();
const rows: string[] = [];
const notes: string[] = [];
let failed = false;
for (const name of wanted) {
  const fault = faults[name]!;
  console.error(`running ${name}: ${fault.title}…`);
  const start = performance.now();
  let run: FaultRun;
  try {
    run = await fault.run();
  } catch (error) {
    console.error(error);
    failed = true;
    rows.push(
      `| ${name} | ${fault.title} | | | | | | | | | | | ${seconds(performance.now() - start)} | ERROR |`,
    );
    continue;
  }
  const result = verdict(run);
  if (result !== 'ok') failed = true;
  const { db } = run;
  rows.push(
    `| ${name} | ${fault.title} | ${run.accepted} | ${run.refused} | ${run.expected} | ${run.delivered} | ${run.lost} | ${run.duplicates} | ${db.succeeded}/${db.deliveries} SUCCEEDED | ${seconds(run.downMs)} | ${seconds(run.gapMs)} | ${seconds(run.recoveryMs)} | ${seconds(performance.now() - start)} | ${result} |`,
  );
  for (const [reason, count] of run.refusals) notes.push(`${name}: refused ${count}× ${reason}`);
  if (run.unconfirmed > 0)
    notes.push(`${name}: ${run.unconfirmed} deliveries of events whose mutation was refused (stored anyway)`);
  for (const problem of run.problems) notes.push(`${name}: ${problem}`);
  for (const [who, lines] of Object.entries(run.tails)) {
    console.error(`--- ${name}: last lines of ${who}\n${lines.join('\n')}`);
  }
}

console.log(
  [
    `Load: ${load.rate} publishEvent/s for ${load.durationMs / 1000} s, ${load.webhooks} webhooks per event.`,
    '',
    '| fault | what | accepted | refused | expected | delivered | lost | duplicates | database | down s | gap s | recovery s | took s | result |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...notes,
    `Suite: ${seconds(performance.now() - suiteStart)} s.`,
  ].join('\n'),
);
process.exit(failed ? 1 : 0);
