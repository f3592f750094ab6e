import { z } from 'zod';

/**
 * What a webhook subscribes to: an event type (`invoices.invoice.paid`), every type under a
 * prefix (`invoices.*`, `invoices.invoice.*`), or everything (`*`).
 */
const token = '[a-z][a-z0-9_]*';
export const subscriptionPattern = z
  .string()
  .max(255)
  .regex(
    new RegExp(`^(\\*|(${token}\\.){1,2}\\*|(${token}\\.)?${token}\\.${token})$`),
    'must be an event type, a prefix ending in .* or *',
  );

export function patternMatches(pattern: string, type: string): boolean {
  if (pattern === '*' || pattern === type) return true;
  return pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1));
}

/** Every pattern that matches `type`: what a webhook subscribed to it may have stored. */
export function eventPatternsMatching(type: string): string[] {
  const parts = type.split('.');
  const prefixes = parts.slice(0, -1).map((_, i) => `${parts.slice(0, i + 1).join('.')}.*`);
  return [type, '*', ...prefixes];
}
