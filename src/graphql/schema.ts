import { builder } from './builder.ts';
import './types/errors.ts';
import './types/event-type.ts';
import './types/event.ts';

export const schema = builder.toSchema();
