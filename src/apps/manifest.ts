import { z } from 'zod';
import type { FieldProblem } from '../errors.ts';
import type { EventType } from '../event-types/event-type.entity.ts';
import { parseEventTypeName } from '../event-types/event-type.service.ts';
import { text } from '../input.ts';
import { patternMatches, subscriptionPattern } from '../webhooks/event-patterns.ts';
import type { Manifest, ManifestWebhook } from './app.entity.ts';
import { covers, dataScope, scopeFor } from './data-scopes.ts';

export const manifestInput = z
  .object({
    scopes: z.array(dataScope).min(1, 'declare at least one scope').max(50),
    webhooks: z
      .array(
        z.object({
          key: z
            .string()
            .max(100)
            .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, - and _'),
          name: text(255).nullish(),
          url: text(4096),
          events: z.array(subscriptionPattern).min(1, 'subscribe to at least one event type').max(100),
        }),
      )
      .max(50),
  })
  .superRefine((manifest, ctx) => {
    const seen = new Set<string>();
    manifest.webhooks.forEach((webhook, i) => {
      if (seen.has(webhook.key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['webhooks', i, 'key'],
          message: `key ${webhook.key} is used twice`,
        });
      }
      seen.add(webhook.key);
    });
  })
  .transform((manifest): Manifest => ({
    scopes: [...new Set(manifest.scopes)],
    webhooks: manifest.webhooks.map((webhook) => ({
      key: webhook.key,
      name: webhook.name ?? null,
      url: webhook.url,
      events: [...new Set(webhook.events)],
    })),
  }));

/**
 * What the catalog says is wrong with a manifest, each problem at its path under `at`: a scope
 * the catalog does not know (no type of that module and model, and no field needing it), and a
 * webhook event whose module and model no declared scope covers (naming the scope it needs).
 */
export function catalogProblems(
  manifest: Manifest,
  catalog: readonly EventType[],
  at: string[],
): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const known = new Set<string>();
  for (const type of catalog) {
    const meta = parseEventTypeName(type.name);
    known.add(scopeFor(meta));
    if (meta.module) known.add(`${meta.module}.*:read`);
    for (const field of type.fieldScopes ?? []) known.add(field.scope);
  }
  manifest.scopes.forEach((scope, i) => {
    if (!known.has(scope)) {
      problems.push({
        path: [...at, 'scopes', String(i)],
        message: `${scope} is not a scope of the catalog`,
      });
    }
  });
  const scopes = new Set(manifest.scopes);
  manifest.webhooks.forEach((webhook, i) => {
    webhook.events.forEach((pattern, j) => {
      const path = [...at, 'webhooks', String(i), 'events', String(j)];
      const matched = catalog.filter((type) => !type.deprecated && patternMatches(pattern, type.name));
      if (matched.length === 0) {
        problems.push({ path, message: `${pattern} matches no event type of the catalog` });
        return;
      }
      const missing = [
        ...new Set(
          matched
            .map((type) => parseEventTypeName(type.name))
            .filter((meta) => !covers(scopes, meta))
            .map(scopeFor),
        ),
      ];
      if (missing.length > 0) {
        problems.push({
          path,
          message: `webhook ${webhook.key} needs the scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')} for ${pattern}`,
        });
      }
    });
  });
  return problems;
}

/** What changes when an installation moves from one manifest to another. */
export interface ManifestDiff {
  added: ManifestWebhook[];
  removed: ManifestWebhook[];
  changed: { key: string; fields: string[]; before: ManifestWebhook; after: ManifestWebhook }[];
  scopesAdded: string[];
  scopesDropped: string[];
}

/** The webhooks by key: added, removed, changed (which fields); the scopes added and dropped. */
export function diff(from: Manifest, to: Manifest): ManifestDiff {
  const before = new Map(from.webhooks.map((webhook) => [webhook.key, webhook]));
  const after = new Map(to.webhooks.map((webhook) => [webhook.key, webhook]));
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));
  return {
    added: to.webhooks.filter((webhook) => !before.has(webhook.key)),
    removed: from.webhooks.filter((webhook) => !after.has(webhook.key)),
    changed: to.webhooks.flatMap((next) => {
      const previous = before.get(next.key);
      if (!previous) return [];
      const fields = [
        ...(previous.name !== next.name ? ['name'] : []),
        ...(previous.url !== next.url ? ['url'] : []),
        ...(!same(previous.events, next.events) ? ['events'] : []),
      ];
      return fields.length > 0 ? [{ key: next.key, fields, before: previous, after: next }] : [];
    }),
    scopesAdded: to.scopes.filter((scope) => !from.scopes.includes(scope)),
    scopesDropped: from.scopes.filter((scope) => !to.scopes.includes(scope)),
  };
}
