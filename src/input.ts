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
