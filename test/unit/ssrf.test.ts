import { describe, expect, it } from 'vitest';
import { blockedAddress, refuseUrl, type EndpointPolicy, type Resolve } from '../../src/net/ssrf.ts';

const strict: EndpointPolicy = { allowHttp: false, allowedCidrs: [] };

/** What each test host name resolves to (unit test of the classification; no network here). */
const dns: Record<string, string[]> = {
  'hooks.example.com': ['93.184.216.34'],
  'dual.example.com': ['93.184.216.34', '2606:4700::1111'],
  'rebind.example.com': ['93.184.216.34', '10.0.0.5'],
  'metadata.example.com': ['169.254.169.254'],
  'loopback.example.com': ['127.0.0.1'],
  'v6-loopback.example.com': ['::1'],
  'mapped.example.com': ['::ffff:192.168.0.1'],
  'cgnat.example.com': ['100.64.1.1'],
  'ula.example.com': ['fd12:3456::1'],
};
const resolve: Resolve = async (host) => {
  const addresses = dns[host];
  if (!addresses) throw new Error(`ENOTFOUND ${host}`);
  return addresses;
};

const hostile: [url: string, why: RegExp][] = [
  ['http://hooks.example.com/x', /https/],
  ['ftp://hooks.example.com/x', /https/],
  ['javascript:alert(1)', /https/],
  ['not a url', /valid URL/],
  [`https://hooks.example.com/${'a'.repeat(2048)}`, /2048/],
  ['https://user:pass@hooks.example.com/', /credentials/],
  ['https://localhost/', /internal/],
  ['https://LOCALHOST./', /internal/],
  ['https://api.localhost/', /internal/],
  ['https://printer.local/', /internal/],
  ['https://db.internal/', /internal/],
  ['https://intranet/', /fully qualified/],
  ['https://127.0.0.1/', /loopback/],
  ['https://127.1/', /loopback/],
  ['https://2130706433/', /loopback/],
  ['https://0x7f000001/', /loopback/],
  ['https://0177.0.0.1/', /loopback/],
  ['https://0x7f.0.0.1/', /loopback/],
  ['https://127.0.0.1.:8443/', /loopback/],
  ['https://0.0.0.0/', /unspecified/],
  ['https://0/', /unspecified/],
  ['https://10.0.0.1/', /private/],
  ['https://10.255.255.255/', /private/],
  ['https://172.16.0.1/', /private/],
  ['https://172.31.255.254/', /private/],
  ['https://192.168.1.1/', /private/],
  ['https://3232235777/', /private/],
  ['https://169.254.169.254/latest/meta-data/', /linkLocal/],
  ['https://100.64.0.1/', /carrierGradeNat/],
  ['https://224.0.0.1/', /multicast/],
  ['https://255.255.255.255/', /broadcast/],
  ['https://240.0.0.1/', /reserved/],
  ['https://192.0.2.1/', /reserved/],
  ['https://198.51.100.7/', /reserved/],
  ['https://203.0.113.9/', /reserved/],
  ['https://198.18.0.1/', /reserved/],
  ['https://[::1]/', /loopback/],
  ['https://[::]/', /unspecified/],
  ['https://[fe80::1]/', /linkLocal/],
  ['https://[fd00::1]/', /uniqueLocal/],
  ['https://[ff02::1]/', /multicast/],
  ['https://[::ffff:127.0.0.1]/', /loopback/],
  ['https://[::ffff:7f00:1]/', /loopback/],
  ['https://[::ffff:10.0.0.1]/', /private/],
  ['https://[64:ff9b::7f00:1]/', /rfc6052/],
  ['https://[2002:7f00:1::]/', /6to4/],
  ['https://[2001::1]/', /teredo/],
  ['https://[2001:db8::1]/', /reserved/],
  ['https://[100::1]/', /discard/],
  ['https://[::127.0.0.1]/', /IPv4-compatible/],
  ['https://[::7f00:1]/', /IPv4-compatible/],
  ['https://localhost../', /internal/],
  ['https://rebind.example.com/', /resolves to a non-public address: 10\.0\.0\.5/],
  ['https://metadata.example.com/', /linkLocal/],
  ['https://loopback.example.com/', /loopback/],
  ['https://v6-loopback.example.com/', /loopback/],
  ['https://mapped.example.com/', /private/],
  ['https://cgnat.example.com/', /carrierGradeNat/],
  ['https://ula.example.com/', /uniqueLocal/],
  ['https://nowhere.example.com/', /does not resolve/],
];

const legitimate = [
  'https://hooks.example.com/incoming',
  'https://hooks.example.com:8443/path?query=1#fragment',
  'https://HOOKS.example.com./x',
  'https://dual.example.com/',
  'https://93.184.216.34/',
  'https://8.8.8.8/',
  'https://[2606:4700::1111]/',
];

describe('endpoint URL policy', () => {
  it.each(hostile)('refuses %s', async (url, why) => {
    expect(hostile.length).toBeGreaterThanOrEqual(40);
    expect(await refuseUrl(url, strict, resolve)).toMatch(why);
  });

  it.each(legitimate)('accepts %s', async (url) => {
    expect(await refuseUrl(url, strict, resolve)).toBeNull();
  });

  it('accepts http and allowlisted networks only when configured', async () => {
    const selfHosted: EndpointPolicy = { allowHttp: true, allowedCidrs: ['127.0.0.0/8', '10.1.0.0/16'] };
    expect(await refuseUrl('http://127.0.0.1:9000/hook', selfHosted, resolve)).toBeNull();
    expect(await refuseUrl('https://10.1.2.3/hook', selfHosted, resolve)).toBeNull();
    expect(await refuseUrl('https://[::ffff:127.0.0.1]/', selfHosted, resolve)).toBeNull();
    expect(await refuseUrl('https://10.2.0.1/hook', selfHosted, resolve)).toMatch(/private/);
    expect(await refuseUrl('https://localhost/', selfHosted, resolve)).toMatch(/internal/);
  });

  it('classifies resolved addresses for the connect-time check', () => {
    expect(blockedAddress('93.184.216.34', strict)).toBeNull();
    expect(blockedAddress('10.0.0.1', strict)).toMatch(/private/);
    expect(blockedAddress('not-an-ip', strict)).toMatch(/not an IP/);
  });
});
