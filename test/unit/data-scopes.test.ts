import { describe, expect, it } from 'vitest';
import { covers, scopedPayload, visible } from '../../src/apps/data-scopes.ts';

const rules = [
  { path: 'email', scope: 'crm.contact.pii:read' },
  { path: 'addresses.street', scope: 'crm.contact.pii:read' },
  { path: 'owner.phone.number', scope: 'crm.contact.pii:read' },
];

describe('data scopes', () => {
  it('cover a module and model, or every model of a module', () => {
    expect(covers(new Set(['crm.contact:read']), { module: 'crm', model: 'contact' })).toBe(true);
    expect(covers(new Set(['crm.contact:read']), { module: 'crm', model: 'deal' })).toBe(false);
    expect(covers(new Set(['crm.*:read']), { module: 'crm', model: 'deal' })).toBe(true);
    expect(covers(new Set(['crm.*:read']), { module: 'hr', model: 'deal' })).toBe(false);
    expect(covers(new Set(['invoice:read']), { module: null, model: 'invoice' })).toBe(true);
  });

  it('remove the fields a reader may not see, at any depth and through arrays, leaving the value as it was', () => {
    const value = {
      name: 'Ada',
      email: 'ada@example.com',
      addresses: [{ street: '1 Main St', city: 'Leeds' }, { city: 'York' }, 'not an object'],
      owner: { phone: [{ number: '123', kind: 'work' }] },
    };
    const copy = structuredClone(value);
    expect(visible(value, rules, new Set())).toEqual({
      name: 'Ada',
      addresses: [{ city: 'Leeds' }, { city: 'York' }, 'not an object'],
      owner: { phone: [{ kind: 'work' }] },
    });
    expect(value).toEqual(copy);
    expect(visible(value, rules, new Set(['crm.contact.pii:read']))).toBe(value);
  });

  it('keep a key named __proto__ as data', () => {
    const value = JSON.parse('{"__proto__":{"email":"x"},"email":"y"}') as unknown;
    const seen = visible(value, [{ path: '__proto__.email', scope: 's:read' }], new Set()) as object;
    expect(Object.getPrototypeOf(seen)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(seen, '__proto__')?.value).toEqual({});
    expect(Object.getOwnPropertyDescriptor(seen, 'email')?.value).toBe('y');
  });

  it('give nothing of a model the scopes do not cover', () => {
    const event = { module: 'crm', model: 'deal', current: { amount: 1 }, previous: { amount: 0 } };
    expect(scopedPayload(event, [], new Set(['crm.contact:read']))).toEqual({
      current: null,
      previous: null,
    });
  });
});
