import { describe, expect, it } from 'vitest';
import {
  evaluate,
  filterProblems,
  mapCurrent,
  mapMeta,
  mappingProblems,
  type FlowFilter,
} from '../../src/inbound/flow-route.ts';

const request = {
  parsed: { order: { id: 'A1', total: '120.50', lines: [{ sku: 'X' }], paid: true, note: null } },
  headers: { 'x-shop': 'eu-west', 'x-many': ['first', 'second'] },
};
const matches = (filter: FlowFilter) => evaluate(filter, request).matched;

describe('flow filters', () => {
  it.each<[FlowFilter, boolean]>([
    [{ field: 'body.order.id', eq: 'A1' }, true],
    [{ field: 'body.order.id', eq: 'a1' }, false],
    [{ field: 'body.order.total', eq: 120.5 }, true],
    [{ field: 'body.order.paid', eq: true }, true],
    [{ field: 'body.order.paid', eq: 'true' }, false],
    [{ field: 'body.order.id', in: ['B2', 'A1'] }, true],
    [{ field: 'body.order.note', exists: true }, false],
    [{ field: 'body.order.note', exists: false }, true],
    [{ field: 'body.order.lines[0].sku', exists: true }, true],
    [{ field: 'header.x-shop', prefix: 'eu-' }, true],
    [{ field: 'header.x-many', eq: 'first, second' }, true],
    [{ field: 'header.constructor', exists: true }, false],
    [{ field: 'header.x-absent', prefix: 'eu' }, false],
    [{ field: 'body.order.total', gt: 120 }, true],
    [{ field: 'body.order.total', gte: 120.5 }, true],
    [{ field: 'body.order.total', lt: 120.5 }, false],
    [{ field: 'body.order.total', lte: 121 }, true],
    [{ field: 'body.order.id', gt: 0 }, false],
    [{ field: 'body.order.constructor', exists: true }, false],
    [{ field: 'body.order.lines.length', exists: true }, false],
    [{ all: [{ field: 'body.order.id', eq: 'A1' }, { not: { field: 'body.order.paid', eq: false } }] }, true],
    [
      {
        any: [
          { field: 'body.order.id', eq: 'B2' },
          { field: 'header.x-shop', eq: 'us' },
        ],
      },
      false,
    ],
  ])('%j → %s', (filter, expected) => {
    expect(matches(filter)).toBe(expected);
  });

  it('says which condition decided', () => {
    const result = evaluate(
      {
        all: [
          { field: 'body.order.id', eq: 'A1' },
          { field: 'body.order.total', gt: 500 },
        ],
      },
      request,
    );
    expect(result).toEqual({ matched: false, detail: 'body.order.total is "120.50", not > 500' });
  });

  it('refuses documents that are not filters, each problem at its path', () => {
    const deep = Array.from({ length: 9 }).reduce<unknown>((inner) => ({ not: inner }), {
      field: 'body',
      exists: true,
    });
    expect(filterProblems(deep, ['filter'])).toEqual([
      { path: ['filter', ...Array<string>(8).fill('not')], message: 'nests more than 8 levels' },
    ]);
    expect(
      filterProblems(
        {
          any: [
            { field: 'body.a', eq: 1, in: [1] },
            { field: 'query.a', eq: 1 },
            { field: 'header.__proto__', exists: true },
            { field: 'body.a', regex: '.*' },
            { field: 'body.a', eq: { nested: true } },
            { all: [] },
          ],
        },
        ['filter'],
      ).map((p) => p.path.join('.')),
    ).toEqual([
      'filter.any.0',
      'filter.any.1.field',
      'filter.any.2.field',
      'filter.any.3',
      'filter.any.4.eq',
      'filter.any.5.all',
    ]);
    const wide = { all: Array.from({ length: 101 }, () => ({ field: 'body', exists: true })) };
    expect(filterProblems(wide, ['filter'])).toEqual([
      { path: ['filter', 'all', '100'], message: 'more than 100 conditions' },
    ]);
  });
});

describe('flow mappings', () => {
  it('picks and renames fields into current, null where the request has none', () => {
    const mapping = {
      current: { id: 'body.order.id', sku: 'body.order.lines[0].sku', shop: 'header.x-shop', gone: 'body.x' },
    };
    expect(mapCurrent(mapping, request)).toEqual({ id: 'A1', sku: 'X', shop: 'eu-west', gone: null });
    expect(mapCurrent(null, request)).toBe(request.parsed);
    const polluting = JSON.parse('{"current":{"__proto__":"body.order.id","constructor":"body"}}') as unknown;
    expect(mappingProblems(polluting, ['mapping']).map((p) => p.path.join('.'))).toEqual([
      'mapping.current.__proto__',
      'mapping.current.constructor',
    ]);
  });

  it('sets meta parts from values and fields, refusing what is no name segment', () => {
    const parts = { module: 'shop', model: 'order', action: 'created' };
    expect(mapMeta({ meta: { action: { value: 'paid' } } }, parts, request)).toEqual({
      ...parts,
      action: 'paid',
    });
    expect(mapMeta({ meta: { model: { field: 'body.order.id' } } }, parts, request)).toEqual({
      problem: 'meta.model from body.order.id is "A1": not lowercase letters, digits and _',
    });
    expect(mappingProblems({ current: {}, meta: { kind: { value: 'x' } }, extra: 1 }, ['mapping'])).toEqual([
      { path: ['mapping'], message: 'unknown extra: a mapping has current and meta' },
      { path: ['mapping', 'current'], message: 'must map 1 to 100 keys to fields' },
      { path: ['mapping', 'meta', 'kind'], message: 'unknown: meta has module, model and action' },
    ]);
  });
});
