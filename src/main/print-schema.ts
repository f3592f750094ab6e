import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printedSchema } from '../graphql/print-schema.ts';

/** `npm run schema` writes schema/schema.graphql; with --check it fails when the file is stale. */
const file = fileURLToPath(new URL('../../schema/schema.graphql', import.meta.url));
const printed = printedSchema();
if (process.argv.includes('--check')) {
  if (readFileSync(file, 'utf8') !== printed) {
    console.error('schema/schema.graphql is stale: run npm run schema');
    process.exit(1);
  }
} else {
  writeFileSync(file, printed);
}
