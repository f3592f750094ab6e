import { EventTypeEntity } from '../domain/event-types/event-type.entity.ts';
import { EventEntity } from '../domain/events/event.entity.ts';

/** Every entity Herald persists; the ORM and the migration generator both read this list. */
export const entities = [EventTypeEntity, EventEntity];
