import type { IncomingHttpHeaders } from 'node:http';
import type { FieldProblem } from '../errors.ts';
import { bodyPath, valueAt } from './body.ts';
import { headerName } from './verification.ts';

/**
 * A flow's route, as data: a filter deciding whether a request becomes an event, and a mapping
 * from the parsed body and headers to the event's `current` and meta. Both are small JSON
 * documents, checked when saved; nothing in them is executed.
 */

type Scalar = string | number | boolean | null;

/** One test of one field: `{ field: "body.order.status", eq: "paid" }`. */
export type FlowCondition = { field: string } & (
  | { eq: Scalar }
  | { in: Scalar[] }
  | { exists: boolean }
  | { prefix: string }
  | { gt: number }
  | { gte: number }
  | { lt: number }
  | { lte: number }
);

export type FlowFilter = { all: FlowFilter[] } | { any: FlowFilter[] } | { not: FlowFilter } | FlowCondition;

/** A meta part: a fixed segment, or one read from a field. */
export type MetaPart = { value: string } | { field: string };

export interface FlowMapping {
  /** Keys of `current`, each with the field it is read from; without it, `current` is the parsed body. */
  current?: Record<string, string>;
  /** Replaces parts of the event type's name; the type is then module.model.action. */
  meta?: { module?: MetaPart; model?: MetaPart; action?: MetaPart };
}

export interface RoutedRequest {
  parsed: unknown;
  headers: IncomingHttpHeaders | Readonly<Record<string, string | string[]>>;
}

const OPERATORS = ['eq', 'in', 'exists', 'prefix', 'gt', 'gte', 'lt', 'lte'] as const;
const COMBINATORS = ['all', 'any', 'not'] as const;
const MAX_DEPTH = 8;
const MAX_CONDITIONS = 100;
const MAX_LIST = 100;
const MAX_STRING = 1000;
const META_SEGMENT = /^[a-z][a-z0-9_]*$/;

/** Names that would reach an object's prototype rather than its own data. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** A field reference: `body`, `body.<path>`, `body[0].<path>` or `header.<name>`; null when it is none. */
function fieldOf(ref: unknown): { body: string | null } | { header: string } | null {
  if (typeof ref !== 'string' || ref.length > 300) return null;
  if (ref === 'body') return { body: null };
  if (ref.startsWith('header.')) {
    const name = headerName.safeParse(ref.slice('header.'.length));
    return name.success && !PROTOTYPE_KEYS.has(name.data) ? { header: name.data } : null;
  }
  const path = ref.startsWith('body.') ? ref.slice(5) : ref.startsWith('body[') ? ref.slice(4) : null;
  return path !== null && bodyPath.safeParse(path).success ? { body: path } : null;
}

const FIELD_MESSAGE = 'must be body, body.<path> (e.g. body.order.id, body[0].sku) or header.<name>';

/** The value a field names in a request: undefined when there is none. */
export function read(ref: string, request: RoutedRequest): unknown {
  const field = fieldOf(ref);
  if (!field) return undefined;
  if ('header' in field) {
    if (!Object.hasOwn(request.headers, field.header)) return undefined;
    const value = request.headers[field.header];
    // As node:http joins a repeated header (Set-Cookie aside).
    return Array.isArray(value) ? value.join(', ') : value;
  }
  return field.body === null ? request.parsed : valueAt(request.parsed, field.body);
}

const isScalar = (value: unknown): value is Scalar =>
  value === null ||
  typeof value === 'boolean' ||
  (typeof value === 'number' && Number.isFinite(value)) ||
  (typeof value === 'string' && value.length <= MAX_STRING);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** What is wrong with a filter document, each problem at its path under `at`. */
export function filterProblems(filter: unknown, at: string[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  let conditions = 0;
  const check = (node: unknown, path: string[], depth: number): void => {
    const problem = (message: string, under: string[] = path): void => {
      problems.push({ path: under, message });
    };
    if (!isObject(node)) return problem('must be an object: a condition, or all / any / not');
    if (depth > MAX_DEPTH) return problem(`nests more than ${MAX_DEPTH} levels`);
    const keys = Object.keys(node);
    const combinator = COMBINATORS.find((key) => key in node);
    if (combinator) {
      if (keys.length !== 1) return problem(`${combinator} takes nothing beside it`);
      const inner = node[combinator];
      if (combinator === 'not') return check(inner, [...path, 'not'], depth + 1);
      if (!Array.isArray(inner) || inner.length === 0) {
        return problem('must be a non-empty list of filters', [...path, combinator]);
      }
      inner.forEach((child, i) => check(child, [...path, combinator, String(i)], depth + 1));
      return;
    }
    if (++conditions > MAX_CONDITIONS) return problem(`more than ${MAX_CONDITIONS} conditions`);
    if (!fieldOf(node.field)) problem(FIELD_MESSAGE, [...path, 'field']);
    const operators = OPERATORS.filter((key) => key in node);
    const unknown = keys.filter((key) => key !== 'field' && !(OPERATORS as readonly string[]).includes(key));
    if (unknown.length > 0) {
      return problem(`unknown ${unknown.join(', ')}: use ${OPERATORS.join(', ')}, or all / any / not`);
    }
    if (operators.length !== 1) return problem(`give exactly one of ${OPERATORS.join(', ')}`);
    const operator = operators[0]!;
    const operand = node[operator];
    const under = [...path, operator];
    switch (operator) {
      case 'eq':
        if (!isScalar(operand)) problem('must be a string, number, boolean or null', under);
        break;
      case 'in':
        if (!Array.isArray(operand) || operand.length === 0 || operand.length > MAX_LIST) {
          problem(`must be a list of 1 to ${MAX_LIST} values`, under);
        } else if (!operand.every(isScalar)) {
          problem('must hold strings, numbers, booleans or null', under);
        }
        break;
      case 'exists':
        if (typeof operand !== 'boolean') problem('must be true or false', under);
        break;
      case 'prefix':
        if (typeof operand !== 'string' || operand.length === 0 || operand.length > MAX_STRING) {
          problem(`must be a string of 1 to ${MAX_STRING} characters`, under);
        }
        break;
      default:
        if (typeof operand !== 'number' || !Number.isFinite(operand)) problem('must be a number', under);
    }
  };
  check(filter, at, 1);
  return problems;
}

/** What is wrong with a mapping document, each problem at its path under `at`. */
export function mappingProblems(mapping: unknown, at: string[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const problem = (path: string[], message: string): void => {
    problems.push({ path: [...at, ...path], message });
  };
  if (!isObject(mapping)) return [{ path: at, message: 'must be an object with current and/or meta' }];
  const unknown = Object.keys(mapping).filter((key) => key !== 'current' && key !== 'meta');
  if (unknown.length > 0) problem([], `unknown ${unknown.join(', ')}: a mapping has current and meta`);
  const { current, meta } = mapping;
  if (current !== undefined) {
    if (!isObject(current) || Object.keys(current).length === 0 || Object.keys(current).length > MAX_LIST) {
      problem(['current'], `must map 1 to ${MAX_LIST} keys to fields`);
    } else {
      for (const [key, ref] of Object.entries(current)) {
        if (key.length > 100 || /\p{Cc}/u.test(key) || PROTOTYPE_KEYS.has(key)) {
          problem(
            ['current', key],
            'must be at most 100 printable characters, not __proto__, constructor or prototype',
          );
        } else if (!fieldOf(ref)) problem(['current', key], FIELD_MESSAGE);
      }
    }
  }
  if (meta !== undefined) {
    if (!isObject(meta)) return [...problems, { path: [...at, 'meta'], message: 'must be an object' }];
    for (const [part, given] of Object.entries(meta)) {
      const path = ['meta', part];
      if (part !== 'module' && part !== 'model' && part !== 'action') {
        problem(path, 'unknown: meta has module, model and action');
      } else if (!isObject(given) || Object.keys(given).length !== 1) {
        problem(path, 'give exactly one of value, field');
      } else if ('value' in given) {
        if (typeof given.value !== 'string' || !META_SEGMENT.test(given.value)) {
          problem([...path, 'value'], 'must be lowercase letters, digits and _, starting with a letter');
        }
      } else if (!fieldOf(given.field)) {
        problem([...path, 'field'], FIELD_MESSAGE);
      }
    }
  }
  return problems;
}

/** Whether a request passes a filter, and if not, the first reason it does not. */
export function evaluate(filter: FlowFilter, request: RoutedRequest): { matched: boolean; detail: string } {
  if ('all' in filter) {
    for (const child of filter.all) {
      const result = evaluate(child, request);
      if (!result.matched) return result;
    }
    return { matched: true, detail: `all ${filter.all.length} matched` };
  }
  if ('any' in filter) {
    const results = filter.any.map((child) => evaluate(child, request));
    const hit = results.find((result) => result.matched);
    return hit ?? { matched: false, detail: `none of ${results.length} matched: ${results[0]!.detail}` };
  }
  if ('not' in filter) {
    const result = evaluate(filter.not, request);
    return { matched: !result.matched, detail: `not (${result.detail})` };
  }
  const value = read(filter.field, request);
  const shown = value === undefined ? 'missing' : JSON.stringify(value).slice(0, 100);
  const test = (matched: boolean, wanted: string) => ({
    matched,
    detail: `${filter.field} is ${shown}${matched ? ', ' : ', not '}${wanted}`,
  });
  if ('eq' in filter) return test(equal(value, filter.eq), `= ${JSON.stringify(filter.eq)}`);
  if ('in' in filter) {
    return test(
      filter.in.some((candidate) => equal(value, candidate)),
      `in ${JSON.stringify(filter.in).slice(0, 100)}`,
    );
  }
  if ('exists' in filter) {
    const present = value !== undefined && value !== null;
    return test(present === filter.exists, filter.exists ? 'present' : 'absent');
  }
  if ('prefix' in filter) {
    return test(
      typeof value === 'string' && value.startsWith(filter.prefix),
      `starting with ${JSON.stringify(filter.prefix)}`,
    );
  }
  const number = numeric(value);
  const [symbol, bound, holds] =
    'gt' in filter
      ? ['>', filter.gt, (n: number) => n > filter.gt]
      : 'gte' in filter
        ? ['≥', filter.gte, (n: number) => n >= filter.gte]
        : 'lt' in filter
          ? ['<', filter.lt, (n: number) => n < filter.lt]
          : ['≤', filter.lte, (n: number) => n <= filter.lte];
  return test(number !== null && holds(number), `${symbol} ${bound}`);
}

/**
 * A number, or a string holding one: CSV cells, XML text and headers are strings, so `"42.5"`
 * compares as 42.5.
 */
function numeric(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string' || value.trim() === '') return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

/** Equality of JSON scalars, a number matching a string that holds it (CSV, XML, headers). */
function equal(value: unknown, wanted: Scalar): boolean {
  if (value === wanted) return true;
  if (typeof wanted === 'number' && typeof value === 'string') return numeric(value) === wanted;
  return false;
}

/** The event's `current` by the mapping: each key read from its field, null where there is none. */
export function mapCurrent(mapping: FlowMapping | null, request: RoutedRequest): unknown {
  if (!mapping?.current) return request.parsed;
  return Object.fromEntries(
    Object.entries(mapping.current).map(([key, ref]) => [key, read(ref, request) ?? null]),
  );
}

/**
 * The event type's parts with the mapping's meta over them, or why a part read from a field is
 * not a name segment.
 */
export function mapMeta(
  mapping: FlowMapping | null,
  parts: { module: string | null; model: string; action: string },
  request: RoutedRequest,
): { module: string | null; model: string; action: string } | { problem: string } {
  const meta = { ...parts };
  for (const part of ['module', 'model', 'action'] as const) {
    const given = mapping?.meta?.[part];
    if (!given) continue;
    const value = 'value' in given ? given.value : read(given.field, request);
    if (typeof value !== 'string' || !META_SEGMENT.test(value)) {
      const field = 'field' in given ? given.field : part;
      const shown = value === undefined ? 'missing' : JSON.stringify(value).slice(0, 100);
      return { problem: `meta.${part} from ${field} is ${shown}: not lowercase letters, digits and _` };
    }
    meta[part] = value;
  }
  return meta;
}

/** The event type name of its parts: `[module.]model.action`. */
export const eventTypeOf = (meta: { module: string | null; model: string; action: string }): string =>
  [meta.module, meta.model, meta.action].filter((part) => part !== null).join('.');
