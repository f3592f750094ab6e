import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from './schema.ts';

/** The committed SDL: printed from the builder, sorted, so any change shows up in review. */
export const printedSchema = (): string => `${printSchema(lexicographicSortSchema(schema))}\n`;
