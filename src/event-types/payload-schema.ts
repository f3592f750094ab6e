import { Ajv, type ValidateFunction } from 'ajv';
import type { FieldProblem } from '../errors.ts';

/**
 * JSON Schemas that event types may carry for their `current` payload. Compiled once per schema
 * (keyed by its text), so publishing checks cost one function call.
 */
export class PayloadSchemas {
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly compiled = new Map<string, ValidateFunction>();

  /** Problems with the schema itself, for upsertEventType. */
  problemsWithSchema(schema: unknown, path: string[]): FieldProblem[] {
    try {
      this.validator(schema);
      return [];
    } catch (error) {
      return [{ path, message: `not a valid JSON Schema: ${(error as Error).message}` }];
    }
  }

  /** Problems with a payload against its type's schema, for publishEvent. */
  problemsWithPayload(schema: unknown, payload: unknown, path: string[]): FieldProblem[] {
    const validate = this.validator(schema);
    if (validate(payload)) return [];
    return (validate.errors ?? []).map((error) => ({
      path: [...path, ...error.instancePath.split('/').filter(Boolean)],
      message: `${error.instancePath || 'value'} ${error.message ?? 'is invalid'}`,
    }));
  }

  private validator(schema: unknown): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.compiled.get(key);
    if (!validate) {
      if (typeof schema !== 'object' || schema === null) throw new Error('a schema is a JSON object');
      validate = this.ajv.compile(schema);
      this.compiled.set(key, validate);
    }
    return validate;
  }
}
