import type { z } from 'zod';
import { InvalidInputError } from './errors.ts';

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
