import { afterEach, describe, expect, it } from 'vitest';
import {
  acceptsContentType,
  bodyPath,
  inboundFormats,
  parseBody,
  valueAt,
  type InboundFormat,
  type ParsedBody,
} from '../../src/inbound/body.ts';

const parsed = (format: InboundFormat, body: string | Buffer, contentType?: string): unknown => {
  const result = parseBody(format, typeof body === 'string' ? Buffer.from(body) : body, contentType);
  if (result.status !== 'PARSED') throw new Error(`expected PARSED, got: ${result.error}`);
  return result.value;
};

const failure = (format: InboundFormat, body: string | Buffer, contentType?: string): string => {
  const result: ParsedBody = parseBody(
    format,
    typeof body === 'string' ? Buffer.from(body) : body,
    contentType,
  );
  if (result.status !== 'FAILED') throw new Error(`expected FAILED, got: ${JSON.stringify(result.value)}`);
  return result.error;
};

// Every pollution attempt below must leave Object.prototype as it was.
afterEach(() => {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
});

describe('acceptsContentType', () => {
  it.each<[InboundFormat, string | undefined, boolean]>([
    ['JSON', 'application/json', true],
    ['JSON', 'application/json; charset=utf-8', true],
    ['JSON', 'APPLICATION/JSON', true],
    ['JSON', ' Application/Json ;charset=UTF-8', true],
    ['JSON', 'application/vnd.api+json', true],
    ['JSON', 'application/cloudevents+json; charset=utf-8', true],
    ['JSON', 'text/json', true],
    ['JSON', 'text/plain', false],
    ['JSON', 'application/jsonp', false],
    ['JSON', 'application/+json', false],
    ['JSON', 'application/xml', false],
    ['JSON', undefined, false],
    ['JSON', '', false],
    ['CSV', 'text/csv', true],
    ['CSV', 'text/csv; header=present', true],
    ['CSV', 'application/csv', true],
    ['CSV', 'text/plain', true],
    ['CSV', 'application/json', false],
    ['CSV', undefined, false],
    ['XML', 'application/xml', true],
    ['XML', 'text/xml; charset=ISO-8859-1', true],
    ['XML', 'application/soap+xml', true],
    ['XML', 'application/atom+xml', true],
    ['XML', 'text/html', false],
    ['XML', undefined, false],
    ['TXT', 'text/plain', true],
    ['TXT', 'text/plain; charset=windows-1252', true],
    ['TXT', 'text/html', true],
    ['TXT', 'TEXT/MARKDOWN', true],
    ['TXT', 'application/json', false],
    ['TXT', undefined, true],
    ['TXT', '', true],
    ['FORM', 'application/x-www-form-urlencoded', true],
    ['FORM', 'application/x-www-form-urlencoded; charset=UTF-8', true],
    ['FORM', 'multipart/form-data; boundary=x', false],
    ['FORM', undefined, false],
  ])('%s with %j → %s', (format, contentType, accepted) => {
    expect(acceptsContentType(format, contentType)).toBe(accepted);
  });

  it('covers every format', () => {
    expect(inboundFormats).toEqual(['JSON', 'CSV', 'XML', 'TXT', 'FORM']);
  });
});

describe('text decoding', () => {
  it('strips a UTF-8 BOM', () => {
    expect(parsed('JSON', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]))).toEqual({
      a: 1,
    });
    expect(parsed('TXT', Buffer.from('\ufeffhello'))).toBe('hello');
  });

  it('honours an iso-8859-1 / latin1 charset', () => {
    const body = Buffer.from('{"name":"Zoë Müller"}', 'latin1');
    expect(parsed('JSON', body, 'application/json; charset=ISO-8859-1')).toEqual({ name: 'Zoë Müller' });
    expect(parsed('JSON', body, 'application/json; charset="latin1"')).toEqual({ name: 'Zoë Müller' });
    expect(parsed('TXT', Buffer.from('Grüße', 'latin1'), 'text/plain; charset=iso-8859-1')).toBe('Grüße');
  });

  it('honours windows-1252', () => {
    expect(parsed('TXT', Buffer.from([0x80, 0x20, 0x35]), 'text/plain; charset=windows-1252')).toBe('€ 5');
  });

  it('refuses invalid UTF-8 instead of replacing it, naming the byte', () => {
    expect(failure('JSON', Buffer.from('{"name":"Zo\xeb"}', 'latin1'))).toBe('not valid UTF-8 at byte 11');
    expect(failure('TXT', Buffer.from([0x61, 0xc3]), 'text/plain; charset=utf-8')).toBe(
      'not valid UTF-8 at byte 1',
    );
  });

  it('counts a BOM and a genuine U+FFFD when naming the invalid byte', () => {
    const body = Buffer.concat([Buffer.from('\ufeff\ufffd ok '), Buffer.from([0xff])]);
    expect(failure('TXT', body)).toBe('not valid UTF-8 at byte 10');
    expect(parsed('TXT', Buffer.from('\ufffd'))).toBe('\ufffd');
  });

  it('refuses a charset it does not know', () => {
    expect(failure('TXT', Buffer.from('hi'), 'text/plain; charset=shift_jis')).toMatch(
      /charset shift_jis is not supported/,
    );
    expect(failure('TXT', Buffer.from('hi'), 'text/plain; charset=constructor')).toMatch(/not supported/);
  });
});

describe('JSON', () => {
  const stripeEvent = {
    id: 'evt_1PZxq2LkdIwHu7ix3RSXs8Yw',
    object: 'event',
    api_version: '2024-06-20',
    created: 1719993600,
    type: 'invoice.paid',
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: {
      object: {
        id: 'in_1PZxpzLkdIwHu7ixbQvR1ZvS',
        object: 'invoice',
        amount_paid: 4900,
        currency: 'eur',
        customer: 'cus_QQxY0bS2jM1e5D',
        lines: {
          object: 'list',
          data: [{ id: 'il_1', amount: 4900, description: '1 × Pro (at €49.00 / month)' }],
        },
        metadata: {},
      },
    },
  };

  it('parses a Stripe event and reads its paths', () => {
    const value = parsed('JSON', JSON.stringify(stripeEvent, null, 2), 'application/json; charset=utf-8');
    expect(value).toEqual(stripeEvent);
    expect(valueAt(value, 'type')).toBe('invoice.paid');
    expect(valueAt(value, 'data.object.id')).toBe('in_1PZxpzLkdIwHu7ixbQvR1ZvS');
    expect(valueAt(value, 'data.object.lines.data[0].amount')).toBe(4900);
    expect(valueAt(value, 'request.id')).toBeNull();
  });

  it('accepts a top-level scalar', () => {
    expect(parsed('JSON', '42')).toBe(42);
    expect(parsed('JSON', ' "ok" ')).toBe('ok');
    expect(parsed('JSON', 'null')).toBeNull();
  });

  it('names the position of a syntax error', () => {
    expect(failure('JSON', '{"type":"invoice.paid"')).toMatch(/^not valid JSON: .*position 22/);
    expect(failure('JSON', '{"a":1} trailing')).toMatch(/^not valid JSON: .*position 8/);
    expect(failure('JSON', '')).toMatch(/^not valid JSON: Unexpected end of JSON input/);
  });

  it('refuses a NUL character, escaped or not, in values and keys', () => {
    expect(failure('JSON', '{"name":"a\\u0000b"}')).toMatch(/^contains a NUL character/);
    expect(failure('JSON', '{"a\\u0000":1}')).toMatch(/^contains a NUL character/);
    expect(failure('JSON', '{"deep":[{"x":["\\u0000"]}]}')).toMatch(/^contains a NUL character/);
  });

  it('refuses an unpaired surrogate', () => {
    expect(failure('JSON', '{"name":"\\ud800"}')).toMatch(/unpaired surrogate/);
    expect(parsed('JSON', '{"emoji":"\\ud83d\\ude00"}')).toEqual({ emoji: '😀' });
  });

  it('parses a 1 MiB body', () => {
    const items = Array.from({ length: 20_000 }, (_, i) => ({
      id: `item_${i}`,
      amount: i,
      note: 'x'.repeat(16),
    }));
    const body = JSON.stringify({ items });
    expect(body.length).toBeGreaterThan(1024 * 1024);
    expect(valueAt(parsed('JSON', body), 'items[19999].id')).toBe('item_19999');
  });

  it('refuses deep nesting instead of overflowing the stack', () => {
    expect(failure('JSON', '['.repeat(100_000) + ']'.repeat(100_000))).toMatch(/more than 256 levels deep/);
    expect(failure('JSON', '{"a":'.repeat(300) + '1' + '}'.repeat(300))).toMatch(/levels deep/);
    expect(parsed('JSON', '['.repeat(256) + ']'.repeat(256))).toBeInstanceOf(Array);
  });

  it('keeps a __proto__ key as data', () => {
    const value = parsed(
      'JSON',
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
    );
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value as object)).toEqual(['__proto__', 'constructor']);
    expect(valueAt(value, '__proto__.polluted')).toBe(true);
    expect(valueAt(value, 'constructor.prototype.polluted')).toBe(true);
  });
});

describe('CSV', () => {
  const invoices = [
    'invoice_number,customer,amount,currency,memo',
    'INV-0001,"Acme, Inc.",1250.00,EUR,"Q2 retainer, paid ""net 30"""',
    'INV-0002,Globex,00480.50,EUR,',
    '',
    'INV-0003,"Initech ""EU""",99.99,GBP,"multi',
    'line"',
    '',
  ].join('\r\n');

  it('parses rows keyed by the header row, quoted commas and quotes intact', () => {
    expect(parsed('CSV', invoices, 'text/csv')).toEqual([
      {
        invoice_number: 'INV-0001',
        customer: 'Acme, Inc.',
        amount: '1250.00',
        currency: 'EUR',
        memo: 'Q2 retainer, paid "net 30"',
      },
      { invoice_number: 'INV-0002', customer: 'Globex', amount: '00480.50', currency: 'EUR', memo: '' },
      {
        invoice_number: 'INV-0003',
        customer: 'Initech "EU"',
        amount: '99.99',
        currency: 'GBP',
        memo: 'multi\r\nline',
      },
    ]);
  });

  it('strips a BOM before the header and skips empty lines', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('id,total\n\n1,2\n\n\n')]);
    expect(parsed('CSV', body)).toEqual([{ id: '1', total: '2' }]);
  });

  it('gives no rows for a header alone or an empty body', () => {
    expect(parsed('CSV', 'id,total\n')).toEqual([]);
    expect(parsed('CSV', '')).toEqual([]);
  });

  it('splits on commas only', () => {
    expect(parsed('CSV', 'id;total\n1;2\n')).toEqual([{ 'id;total': '1;2' }]);
  });

  it('refuses a ragged row, naming its line', () => {
    expect(failure('CSV', 'id,total,currency\n1,2,EUR\n3,4\n')).toMatch(/^not valid CSV: .*got 2 on line 3/);
    expect(failure('CSV', 'id,total\n1,2,3\n')).toMatch(/on line 2/);
    expect(failure('CSV', 'id,total\n1,2\n \n')).toMatch(/on line 3/);
  });

  it('refuses duplicate header names', () => {
    expect(failure('CSV', 'id,amount,id\n1,2,3\n')).toBe(
      'not valid CSV: the header row names column "id" twice',
    );
  });

  it('refuses broken quoting', () => {
    expect(failure('CSV', 'id,memo\n1,"unclosed\n')).toMatch(/^not valid CSV: Quote Not Closed/);
    expect(failure('CSV', 'id,memo\n1,"a"b\n')).toMatch(/^not valid CSV: Invalid Closing Quote/);
  });

  it('keeps a __proto__ header as data', () => {
    const rows = parsed('CSV', '__proto__,constructor\n"{""polluted"":1}",x\n') as object[];
    expect(rows).toHaveLength(1);
    expect(Object.getPrototypeOf(rows[0])).toBe(Object.prototype);
    expect(Object.keys(rows[0]!)).toEqual(['__proto__', 'constructor']);
    expect(valueAt(rows, '[0].__proto__')).toBe('{"polluted":1}');
    expect(valueAt(rows, '0.constructor')).toBe('x');
  });

  it('refuses a NUL character in a field', () => {
    expect(failure('CSV', 'id\na\0b\n')).toMatch(/^contains a NUL character/);
  });
});

describe('XML', () => {
  const status = `<?xml version="1.0" encoding="UTF-8"?>
<InvoiceStatus xmlns="urn:example:e-invoice:status:1" version="2">
  <Invoice id="00123" number="INV-2024-0042">
    <Status code="ACCEPTED" at="2024-05-02T10:15:00Z">Accepted by recipient</Status>
    <Total currency="EUR">01250.00</Total>
    <Buyer>Smith &amp; Sons</Buyer>
  </Invoice>
  <Invoice id="00124" number="INV-2024-0043">
    <Status code="REJECTED" at="2024-05-02T10:16:00Z"><![CDATA[Rejected: <VAT> missing]]></Status>
    <Total currency="EUR">99</Total>
  </Invoice>
</InvoiceStatus>`;

  it('parses an e-invoice status with attributes, text and repeated elements', () => {
    const value = parsed('XML', status, 'application/xml');
    expect(value).toEqual({
      InvoiceStatus: {
        '@_xmlns': 'urn:example:e-invoice:status:1',
        '@_version': '2',
        Invoice: [
          {
            '@_id': '00123',
            '@_number': 'INV-2024-0042',
            Status: {
              '#text': 'Accepted by recipient',
              '@_code': 'ACCEPTED',
              '@_at': '2024-05-02T10:15:00Z',
            },
            Total: { '#text': '01250.00', '@_currency': 'EUR' },
            // Entities are off: references stay as the sender wrote them.
            Buyer: 'Smith &amp; Sons',
          },
          {
            '@_id': '00124',
            '@_number': 'INV-2024-0043',
            Status: {
              '#text': 'Rejected: <VAT> missing',
              '@_code': 'REJECTED',
              '@_at': '2024-05-02T10:16:00Z',
            },
            Total: { '#text': '99', '@_currency': 'EUR' },
          },
        ],
      },
    });
    expect(valueAt(value, 'InvoiceStatus.Invoice[0].@_id')).toBe('00123');
    expect(valueAt(value, 'InvoiceStatus.Invoice.1.Status.@_code')).toBe('REJECTED');
    expect(valueAt(value, 'InvoiceStatus.Invoice[0].Total.#text')).toBe('01250.00');
  });

  it('reports where a document is not well-formed', () => {
    expect(failure('XML', '<Invoice>\n  <Id>1</Invoice>')).toMatch(
      /^not well-formed XML at line 2, column \d+: Expected closing tag 'Id'/,
    );
    expect(failure('XML', '')).toMatch(/^not well-formed XML at line 1/);
    expect(failure('XML', '{"type":"invoice.paid"}')).toMatch(/^not well-formed XML/);
  });

  it('refuses document type declarations, wherever they are', () => {
    const refused = 'XML document type declarations are not accepted';
    expect(failure('XML', '<!DOCTYPE Invoice><Invoice/>')).toBe(refused);
    expect(
      failure('XML', '<?xml version="1.0"?>\n<!doctype Invoice SYSTEM "file:///etc/passwd"><Invoice/>'),
    ).toBe(refused);
    expect(failure('XML', '<Invoice><!DOCTYPE x [<!ENTITY e "v">]><Id>&e;</Id></Invoice>')).toBe(refused);
    expect(failure('XML', '<Invoice><!ENTITY e "v"></Invoice>')).toBe(refused);
  });

  it('does not mistake a DOCTYPE inside CDATA or a comment for one', () => {
    const body = '<Mail><!-- <!DOCTYPE html> --><Html><![CDATA[<!DOCTYPE html><p>Hi</p>]]></Html></Mail>';
    expect(parsed('XML', body)).toEqual({ Mail: { Html: '<!DOCTYPE html><p>Hi</p>' } });
  });

  it('refuses a billion laughs well within 50 ms', () => {
    const entities = Array.from(
      { length: 9 },
      (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`,
    ).join('\n');
    const bomb = `<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n${entities}\n]>\n<lolz>&lol9;</lolz>`;
    const started = performance.now();
    const result = parseBody('XML', Buffer.from(bomb), 'application/xml');
    expect(performance.now() - started).toBeLessThan(50);
    expect(result).toEqual({ status: 'FAILED', error: 'XML document type declarations are not accepted' });
  });

  it('refuses elements that would reach a prototype', () => {
    expect(failure('XML', '<a><__proto__><polluted>1</polluted></__proto__></a>')).toMatch(
      /^not accepted as XML: .*__proto__/,
    );
    expect(
      failure('XML', '<a><constructor><prototype><polluted>1</polluted></prototype></constructor></a>'),
    ).toMatch(/^not accepted as XML: .*constructor/);
  });

  it('keeps attributes named like prototype keys under their prefix', () => {
    const value = parsed('XML', '<a __proto__="x" constructor="y"><toString>1</toString></a>');
    expect(valueAt(value, 'a.@___proto__')).toBe('x');
    expect(valueAt(value, 'a.@_constructor')).toBe('y');
    expect(Object.getPrototypeOf(valueAt(value, 'a'))).toBe(Object.prototype);
  });

  it('refuses deep nesting', () => {
    expect(failure('XML', '<a>'.repeat(10_000) + '</a>'.repeat(10_000))).toMatch(
      /^not accepted as XML: .*nested/i,
    );
  });

  it('refuses a NUL character', () => {
    expect(failure('XML', '<a>x\0y</a>')).toMatch(/^contains a NUL character/);
  });
});

describe('TXT', () => {
  it('keeps the text as it is', () => {
    expect(parsed('TXT', 'invoice 42 paid\n  by transfer\n', 'text/plain')).toBe(
      'invoice 42 paid\n  by transfer\n',
    );
    expect(parsed('TXT', '')).toBe('');
  });

  it('refuses a NUL character', () => {
    expect(failure('TXT', 'a\0b')).toMatch(/^contains a NUL character/);
  });
});

describe('FORM', () => {
  it('parses fields, a repeated field as an array of its values', () => {
    const body =
      'event=payment.completed&id=pay_123&amount=12.50&note=Caf%C3%A9+%26+more&tag=a&tag=b&tag=c&empty=';
    expect(parsed('FORM', body, 'application/x-www-form-urlencoded')).toEqual({
      event: 'payment.completed',
      id: 'pay_123',
      amount: '12.50',
      note: 'Café & more',
      tag: ['a', 'b', 'c'],
      empty: '',
    });
  });

  it('keeps fields named like prototype keys as data', () => {
    const value = parsed('FORM', '__proto__=x&__proto__[polluted]=1&constructor=y&polluted=z');
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(value).toEqual({
      ['__proto__']: 'x',
      '__proto__[polluted]': '1',
      constructor: 'y',
      polluted: 'z',
    });
    expect(Object.hasOwn(value as object, '__proto__')).toBe(true);
    expect(valueAt(value, '__proto__')).toBe('x');
  });

  it('refuses a NUL character', () => {
    expect(failure('FORM', 'a=%00')).toMatch(/^contains a NUL character/);
  });
});

describe('valueAt', () => {
  const value = {
    type: 'invoice.paid',
    data: { object: { id: 'in_1', 'Invoice Number': 'INV-1', 'cbc:ID': 'X' } },
    items: [{ id: 'a' }, { id: 'b', tags: ['x', 'y'] }],
    matrix: [
      [1, 2],
      [3, 4],
    ],
    zero: 0,
    '0': 'object key',
  };

  it.each<[string, unknown]>([
    ['type', 'invoice.paid'],
    ['data.object.id', 'in_1'],
    ['data.object.Invoice Number', 'INV-1'],
    ['data.object.cbc:ID', 'X'],
    ['items[0].id', 'a'],
    ['items.0.id', 'a'],
    ['items[1].tags[1]', 'y'],
    ['items.1.tags.0', 'x'],
    ['matrix[1][0]', 3],
    ['zero', 0],
    ['0', 'object key'],
    ['data', value.data],
  ])('%s → %j', (path, expected) => {
    expect(valueAt(value, path)).toEqual(expected);
  });

  it.each([
    'missing',
    'type.missing',
    'type.length',
    'items[2]',
    'items[01]',
    'items.length',
    'items.-1',
    'data.object.id.x',
    'constructor',
    '__proto__',
    'toString',
    'data.hasOwnProperty',
    'items.map',
    'a..b',
    '',
  ])('%s → undefined', (path) => {
    expect(valueAt(value, path)).toBeUndefined();
  });

  it('indexes a top-level array', () => {
    expect(valueAt([{ id: 'r1' }], '[0].id')).toBe('r1');
    expect(valueAt([{ id: 'r1' }], '0.id')).toBe('r1');
  });

  it('reads nothing from null, undefined or scalars', () => {
    expect(valueAt(null, 'a')).toBeUndefined();
    expect(valueAt(undefined, 'a')).toBeUndefined();
    expect(valueAt('text', 'length')).toBeUndefined();
    expect(valueAt(42, 'toFixed')).toBeUndefined();
  });
});

describe('bodyPath', () => {
  it.each([
    'type',
    'data.object.id',
    'items[0].id',
    'items.0.id',
    'matrix[1][0]',
    '[0].amount',
    'Invoice Number',
    '@_id',
    '#text',
    'cbc:ID',
    'x'.repeat(255),
  ])('accepts %s', (path) => {
    expect(bodyPath.safeParse(path).success).toBe(true);
  });

  it.each([
    '',
    '.type',
    'type.',
    'a..b',
    'a[]',
    'a[x]',
    'a[0',
    'a]',
    'a[-1]',
    'a.[0]',
    'a\tb',
    'x'.repeat(256),
  ])('refuses %j', (path) => {
    expect(bodyPath.safeParse(path).success).toBe(false);
  });
});
