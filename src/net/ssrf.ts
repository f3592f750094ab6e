import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

/**
 * Which endpoint URLs Herald may call: checked when a webhook is saved and again, against the
 * addresses actually resolved, when a delivery connects (so DNS rebinding gains nothing).
 */
export interface EndpointPolicy {
  allowHttp: boolean;
  /** CIDRs allowed although private or loopback (self-hosting, tests). */
  allowedCidrs: readonly string[];
}

export type Resolve = (host: string) => Promise<string[]>;

/** The system resolver (hosts file included), giving up after 3 s. */
export const systemResolve: Resolve = async (host) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`resolving ${host} took over 3 s`)), 3_000);
  });
  try {
    return (await Promise.race([lookup(host, { all: true, verbatim: true }), timeout])).map(
      (entry) => entry.address,
    );
  } finally {
    clearTimeout(timer);
  }
};

export const MAX_URL_LENGTH = 2048;

const blockedNames = [/^localhost$/, /\.localhost$/, /\.local$/, /\.internal$/, /^localhost\.localdomain$/];

/** Why Herald must not connect to `address`, or null when it may. Only public unicast passes. */
const parsedAllowlists = new WeakMap<readonly string[], [ipaddr.IPv4 | ipaddr.IPv6, number][]>();

/** A policy's allowlist is parsed once: every delivery checks it. */
function parsedCidrs(cidrs: readonly string[]) {
  let parsed = parsedAllowlists.get(cidrs);
  if (!parsed) {
    parsed = cidrs.map((cidr) => ipaddr.parseCIDR(cidr));
    parsedAllowlists.set(cidrs, parsed);
  }
  return parsed;
}

export function blockedAddress(address: string, policy: EndpointPolicy): string | null {
  if (!ipaddr.isValid(address)) return `"${address}" is not an IP address`;
  let parsed = ipaddr.parse(address);
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address itself, allowed or not as such.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  for (const range of parsedCidrs(policy.allowedCidrs)) {
    if (range[0].kind() === parsed.kind() && parsed.match(range)) return null;
  }
  const range = parsed.range();
  if (range !== 'unicast') return `${parsed.toString()} is a ${range} address`;
  // ::/8 holds the deprecated IPv4-compatible form (::127.0.0.1), which ipaddr.js calls unicast.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts[0]! < 0x100) {
    return `${parsed.toString()} is an IPv4-compatible address`;
  }
  return null;
}

/**
 * Checks an endpoint URL: scheme, length, no credentials, no internal host names, and every
 * address the host resolves to (every numeric spelling of an IPv4 address is normalised by the
 * URL parser first: decimal, hex, octal, short forms). Returns the reason it is refused, or null.
 */
export async function refuseUrl(raw: string, policy: EndpointPolicy, resolve: Resolve = systemResolve) {
  if (raw.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a valid URL';
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    return policy.allowHttp ? 'must use https or http' : 'must use https';
  }
  if (url.username || url.password) return 'must not contain credentials';
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.+$/, '')
    .toLowerCase();
  if (ipaddr.isValid(host)) {
    const blocked = blockedAddress(host, policy);
    return blocked ? `points to a non-public address: ${blocked}` : null;
  }
  if (blockedNames.some((pattern) => pattern.test(host))) return `host "${host}" is internal`;
  if (!host.includes('.')) return `host "${host}" is not a fully qualified domain name`;
  let addresses: string[];
  try {
    addresses = await resolve(host);
  } catch {
    return `host "${host}" does not resolve`;
  }
  if (addresses.length === 0) return `host "${host}" does not resolve`;
  for (const address of addresses) {
    const blocked = blockedAddress(address, policy);
    if (blocked) return `host "${host}" resolves to a non-public address: ${blocked}`;
  }
  return null;
}
