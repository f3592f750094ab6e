import { ConflictError } from '../errors.ts';

/** Thrown by publishEvent when an idempotency key comes back with a different event; resolvers report a ConflictError. */
export class IdempotencyKeyReusedError extends ConflictError {
  constructor(key: string) {
    super(`idempotency key "${key}" was already used for a different event`);
  }
}
