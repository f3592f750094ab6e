import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../src/graphql/print-schema.ts';

describe('schema/schema.graphql', () => {
  it('is the schema the code builds (run `npm run schema` after changing it)', () => {
    const committed = readFileSync(new URL('../schema/schema.graphql', import.meta.url), 'utf8');
    expect(committed).toBe(printedSchema());
  });

  it('keeps the contract operations of the design', () => {
    for (const operation of [
      'eventTypes(group: String)',
      'eventTypeGroups:',
      'node(id: ID!)',
      'publishEvent(input: PublishEventInput!)',
      'eventPublished(types: [String!])',
    ]) {
      expect(printedSchema()).toContain(operation);
    }
  });
});
