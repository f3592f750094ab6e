import { z } from 'zod';
import { InvalidInputError } from './errors.ts';

/** Trimmed text of 1 to `max` characters with no control characters or lone surrogates (PostgreSQL refuses those). */
export const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}\p{Cs}]*$/u, 'must not contain control characters');

/**
 * Refuses `null` for the fields of a merge patch that cannot be cleared: a ValidationError per
 * field, before anything is parsed or changed.
 */
export function refuseNulls(raw: object, required: readonly string[]): void {
  const nulls = required
    .filter((field) => (raw as Record<string, unknown>)[field] === null)
    .map((field) => ({
      path: ['input', field],
      message: 'cannot be null: omit it to keep the current value',
    }));
  if (nulls.length > 0) throw new InvalidInputError(nulls);
}

/** An ILIKE pattern matching `search` anywhere, its own %, _ and \\ taken literally. */
export const containing = (search: string): string => `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** Parses service input with zod, turning every issue into a field problem under `input`. */
export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new InvalidInputError(
    result.error.issues.map((issue) => ({
      path: ['input', ...issue.path.map(String)],
      message: issue.message,
    })),
  );
}

/** Whether PostgreSQL can store the time as Herald sends it: a UTC year from 1 to 9999. */
export const storableDate = (date: Date): boolean =>
  !Number.isNaN(date.getTime()) && date.getUTCFullYear() >= 1 && date.getUTCFullYear() <= 9999;

export const STORABLE_DATE_RANGE = 'must fall in the years 1 to 9999 (UTC)';

export const UNSTORABLE_TEXT = 'must not contain NUL characters or unpaired surrogates';

/** Whether every string in a JSON value can be stored as PostgreSQL text: no NUL, no lone surrogate. */
export function storable(value: unknown): boolean {
  if (typeof value === 'string') return value.isWellFormed() && !value.includes('\0');
  if (Array.isArray(value)) return value.every(storable);
  if (value && typeof value === 'object')
    return Object.entries(value).every(([k, v]) => storable(k) && storable(v));
  return true;
}

/** Text of at most `max` characters that PostgreSQL can store, line breaks and tabs allowed. */
export const storableText = (max: number) => z.string().max(max).refine(storable, UNSTORABLE_TEXT);
