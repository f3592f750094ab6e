import { InvalidInputError } from '../errors.ts';

/** Thrown by publishEvent for a type missing from the catalog; resolvers report it as a ValidationError. */
export class UnknownEventTypeError extends InvalidInputError {
  constructor(path: string[], type: string) {
    super([{ path, message: `unknown event type "${type}"; see the eventTypes query` }]);
  }
}
