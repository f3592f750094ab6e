/**
 * The parsed copy of an incoming webhook body. The raw bytes are what Herald stores and verifies;
 * this derives the JSON value that routing reads paths from and PostgreSQL keeps as jsonb.
 */

import { parse as parseCsvText } from 'csv-parse/sync';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { z } from 'zod';
import { storable } from '../input.ts';

export const inboundFormats = ['JSON', 'CSV', 'XML', 'TXT', 'FORM'] as const;
export type InboundFormat = (typeof inboundFormats)[number];

export type ParsedBody = { status: 'PARSED'; value: unknown } | { status: 'FAILED'; error: string };

const mediaTypes: Record<InboundFormat, RegExp> = {
  JSON: /^(?:application\/json|text\/json|application\/[^/\s]+\+json)$/,
  CSV: /^(?:text\/csv|application\/csv|text\/plain)$/,
  XML: /^(?:application\/xml|text\/xml|application\/[^/\s]+\+xml)$/,
  TXT: /^text\/[^/\s]+$/,
  FORM: /^application\/x-www-form-urlencoded$/,
};

/**
 * Whether a request's Content-Type fits the format (the receiver answers 415 otherwise). The media
 * type is compared case-insensitively, parameters ignored; only TXT takes a request without one.
 */
export function acceptsContentType(format: InboundFormat, contentType: string | undefined): boolean {
  const media = contentType?.split(';')[0]?.trim().toLowerCase();
  return media ? mediaTypes[format].test(media) : format === 'TXT';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
// Keeps a BOM as U+FEFF so that character offsets still line up with byte offsets.
const lenientUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });
// WHATWG decoders read ISO-8859-1 as its superset windows-1252, as browsers do.
const windows1252 = new TextDecoder('windows-1252');
const decoders = new Map([
  ['utf-8', utf8],
  ['utf8', utf8],
  ['us-ascii', utf8],
  ['iso-8859-1', windows1252],
  ['latin1', windows1252],
  ['windows-1252', windows1252],
]);

/** Nesting beyond this is refused: storable(), JSON.stringify and PostgreSQL's jsonb input all recurse. */
const MAX_DEPTH = 256;

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  textNodeName: '#text',
  // Ids such as 00123 must survive as written, so nothing is turned into a number.
  parseTagValue: false,
  parseAttributeValue: false,
  // Entity references stay as written (&amp; too): no document can make the parser expand text.
  processEntities: false,
  // The declaration and processing instructions describe the document, not its data.
  ignoreDeclaration: true,
  ignorePiTags: true,
});

const parsers: Record<InboundFormat, (text: string) => unknown> = {
  JSON: parseJson,
  CSV: parseCsv,
  XML: parseXml,
  TXT: (text) => text,
  FORM: parseForm,
};

/**
 * The body as JSON: JSON → the value; CSV → row objects keyed by the header row; XML → an object
 * (attributes as '@_name', mixed text as '#text'); TXT → the text; FORM → an object of fields, a
 * repeated field as an array. Never throws: anything wrong is FAILED with a message for the person
 * debugging the sender.
 */
export function parseBody(format: InboundFormat, body: Buffer, contentType?: string): ParsedBody {
  let value: unknown;
  try {
    value = parsers[format](decode(body, contentType));
  } catch (error) {
    return { status: 'FAILED', error: reason(error) };
  }
  if (nestsDeeper(value, MAX_DEPTH)) {
    return { status: 'FAILED', error: `nests arrays and objects more than ${MAX_DEPTH} levels deep` };
  }
  if (!storable(value)) {
    return {
      status: 'FAILED',
      error: 'contains a NUL character or an unpaired surrogate, which PostgreSQL cannot store',
    };
  }
  return { status: 'PARSED', value };
}

/** The text in the Content-Type's charset (UTF-8 when none), any UTF-8 BOM dropped. */
function decode(body: Buffer, contentType: string | undefined): string {
  const name = charset(contentType) ?? 'utf-8';
  const decoder = decoders.get(name);
  if (!decoder) throw new Error(`charset ${name} is not supported: send utf-8, iso-8859-1 or windows-1252`);
  try {
    return decoder.decode(body);
  } catch {
    throw new Error(`not valid UTF-8 at byte ${invalidUtf8Offset(body)}`);
  }
}

function charset(contentType: string | undefined): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
}

/**
 * Where the first invalid sequence starts: at the first U+FFFD the lenient decoder wrote that the
 * body does not itself spell as EF BF BD. Only called once strict decoding failed, so there is one.
 */
function invalidUtf8Offset(body: Buffer): number {
  const text = lenientUtf8.decode(body);
  let offset = 0;
  let counted = 0;
  for (let at = text.indexOf('\uFFFD'); at !== -1; at = text.indexOf('\uFFFD', at + 1)) {
    offset += Buffer.byteLength(text.slice(counted, at));
    counted = at;
    if (body[offset] !== 0xef || body[offset + 1] !== 0xbf || body[offset + 2] !== 0xbd) return offset;
  }
  return offset;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON: ${reason(error)}`, { cause: error });
  }
}

/** Rows as objects; csv-parse defines each column as an own property, so a `__proto__` header is data. */
function parseCsv(text: string): unknown {
  try {
    return parseCsvText(text, { columns: distinctHeader, skip_empty_lines: true });
  } catch (error) {
    throw new Error(`not valid CSV: ${reason(error)}`, { cause: error });
  }
}

/** Two columns of one name would leave only the last one's values in each row. */
function distinctHeader(header: string[]): string[] {
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) throw new Error(`the header row names column "${name}" twice`);
    seen.add(name);
  }
  return header;
}

function parseXml(text: string): unknown {
  if (declaresDocumentType(text)) throw new Error('XML document type declarations are not accepted');
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const { line, col, msg } = valid.err;
    throw new Error(`not well-formed XML at line ${line}${col ? `, column ${col}` : ''}: ${msg}`);
  }
  try {
    return xmlParser.parse(text) as unknown;
  } catch (error) {
    // fast-xml-parser refuses elements named __proto__, constructor or prototype here.
    throw new Error(`not accepted as XML: ${reason(error)}`, { cause: error });
  }
}

/**
 * Whether the document has a `<!DOCTYPE` or `<!ENTITY` outside CDATA sections and comments. It is
 * looked for everywhere, not only before the root, because fast-xml-parser reads a DOCTYPE found
 * inside an element too. One pass, so an entity bomb is refused before anything reads it.
 */
function declaresDocumentType(xml: string): boolean {
  for (let at = xml.indexOf('<!'); at !== -1;) {
    const skipped = xml.startsWith('<![CDATA[', at) ? ']]>' : xml.startsWith('<!--', at) ? '-->' : undefined;
    if (skipped === undefined) {
      if (/^<!(?:DOCTYPE|ENTITY)/i.test(xml.slice(at, at + 9))) return true;
      at = xml.indexOf('<!', at + 2);
    } else {
      // An unclosed section runs to the end: the validator reports it.
      const end = xml.indexOf(skipped, at + 4);
      at = end === -1 ? -1 : xml.indexOf('<!', end + skipped.length);
    }
  }
  return false;
}

/** Fields by name; Object.fromEntries defines own properties, so a field named `__proto__` is data. */
function parseForm(text: string): Record<string, string | string[]> {
  const fields = Map.groupBy(new URLSearchParams(text), ([name]) => name);
  return Object.fromEntries(
    [...fields].map(([name, pairs]) => [
      name,
      pairs.length === 1 ? pairs[0]![1] : pairs.map(([, value]) => value),
    ]),
  );
}

/** Whether arrays and objects nest deeper than `levels`; stops at the limit, so it cannot overflow the stack. */
function nestsDeeper(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  return levels === 0 || Object.values(value).some((child) => nestsDeeper(child, levels - 1));
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const PATH = /^(?:[^.[\]\p{Cc}]+|\[\d+\])(?:\.[^.[\]\p{Cc}]+|\[\d+\])*$/u;
const PATH_KEY = /([^.[\]]+)|\[(\d+)\]/gu;

/** A path into a parsed body as sources configure it: `type`, `data.object.id`, `items[0].id`, `items.0.id`. */
export const bodyPath = z
  .string()
  .min(1)
  .max(255)
  .regex(
    PATH,
    'must be keys separated by dots, each with optional [n] indexes, e.g. data.object.id or items[0].id',
  );

/**
 * The value at a path in a parsed body, or undefined when there is none or the path is not one. A
 * number, in brackets or as a dot segment, indexes an array. Only own properties are followed, so
 * `constructor` or `__proto__` never reach a prototype, and `length` is not an array's.
 */
export function valueAt(value: unknown, path: string): unknown {
  if (!bodyPath.safeParse(path).success) return undefined;
  let current = value;
  for (const [, name, index] of path.matchAll(PATH_KEY)) current = child(current, (name ?? index)!);
  return current;
}

function child(value: unknown, key: string): unknown {
  if (Array.isArray(value)) {
    return /^\d+$/.test(key) && Object.hasOwn(value, key) ? value[Number(key)] : undefined;
  }
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, key)) {
    return (value as Record<string, unknown>)[key];
  }
  return undefined;
}
