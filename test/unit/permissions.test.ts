import { describe, expect, it } from 'vitest';
import { ForbiddenError } from '../../src/errors.ts';
import {
  demand,
  permissions,
  permits,
  requirement,
  scopes,
  type Action,
  type Scope,
} from '../../src/permissions.ts';

const token = (...held: Scope[]) => ({ admin: false, scopes: new Set(held) });
const operator = { admin: true, scopes: new Set<Scope>() };
const actions = Object.keys(permissions) as Action[];

describe('permissions', () => {
  it('grants each action to exactly the scopes the table lists', () => {
    for (const action of actions) {
      const granting = scopes.filter((scope) => permits(token(scope), action));
      const rule: { scopes: readonly Scope[]; everyone?: true } = permissions[action];
      expect(granting, action).toEqual(rule.everyone ? [...scopes] : [...rule.scopes]);
    }
  });

  it('reads with the read or the manage scope, manages with the manage scope only', () => {
    expect(permits(token('webhooks:read'), 'webhooks.read')).toBe(true);
    expect(permits(token('webhooks:manage'), 'webhooks.read')).toBe(true);
    expect(permits(token('webhooks:read'), 'webhooks.manage')).toBe(false);
    expect(permits(token('deliveries:manage'), 'deliveries.read')).toBe(true);
    expect(permits(token('deliveries:read'), 'deliveries.manage')).toBe(false);
    expect(permits(token('events:publish'), 'events.read')).toBe(false);
  });

  it('lets the operator create tenants, manage the catalog and apps, read audit logs and metrics, and nothing of a tenant', () => {
    expect(actions.filter((action) => permits(operator, action))).toEqual([
      'viewer.read',
      'tenants.manage',
      'catalog.manage',
      'audit.read',
      'apps.publish',
      'metrics.read',
      'apps.read',
    ]);
    const tenantToken = actions.filter((action) => permits(token(...scopes), action));
    expect(tenantToken).not.toContain('tenants.manage');
    expect(tenantToken).not.toContain('metrics.read');
  });

  it('grants a token without scopes only what every caller may', () => {
    expect(actions.filter((action) => permits(token(), action))).toEqual(['viewer.read', 'apps.read']);
  });

  it('says what a refused action needs', () => {
    expect(requirement('webhooks.manage')).toBe('needs the scope webhooks:manage to manage webhooks');
    expect(requirement('deliveries.read')).toBe(
      'needs one of the scopes deliveries:read, deliveries:manage to read deliveries',
    );
    expect(requirement('audit.read')).toBe(
      'needs the operator token or the scope audit:read to read the audit log',
    );
    expect(() => demand(token('webhooks:read'), 'tenants.manage')).toThrow(ForbiddenError);
    expect(() => demand(operator, 'tenants.manage')).not.toThrow();
  });
});
