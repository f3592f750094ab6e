import { SlowSubscriberError } from '../domain/errors.ts';

/** A live stream's item for its subscription field; its closing error becomes the field's error. */
export function liveItem<T>(value: T | SlowSubscriberError): T {
  if (value instanceof SlowSubscriberError) throw value;
  return value;
}

export const liveAfterArg = {
  description:
    'A streamCursor received earlier: what came after it is sent first, then live items, with no gap and no repeat. CURSOR_EXPIRED when it is too old to resume from.',
} as const;

export const streamCursorField = {
  nullable: true,
  description:
    'Set on items received from a subscription: give it as `after` when subscribing again to get what came since. Null on items read by queries.',
} as const;
