import { isIP, type LookupFunction } from 'node:net';
import { SpanKind, SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@opentelemetry/semantic-conventions';
import { Agent, request } from 'undici';
import { blockedAddress, systemResolve, type EndpointPolicy, type Resolve } from '../net/ssrf.ts';
import { inSpan, traceHeaders } from '../tracing.ts';

/** The one place Herald makes outgoing HTTP requests. */

export type ErrorClass = 'timeout' | 'connect' | 'dns' | 'ssrf' | 'tls' | 'network';

export type AttemptOutcome =
  | {
      kind: 'response';
      statusCode: number;
      /** Lower-case header names; repeated headers joined with ", ". */
      headers: Record<string, string>;
      /** The first `maxResponseBytes` of the body, as text. */
      body: string;
      durationMs: number;
    }
  | { kind: 'error'; errorClass: ErrorClass; message: string; durationMs: number };

export interface HttpClientOptions {
  connectTimeoutMs: number;
  totalTimeoutMs: number;
  maxResponseBytes: number;
  /** Keep-alive connections per endpoint origin. */
  connectionsPerOrigin: number;
  /** Send the attempt's traceparent/tracestate: off, so receivers see nothing of Herald's traces. */
  propagateTrace: boolean;
}

export const defaultHttpClientOptions: HttpClientOptions = {
  connectTimeoutMs: 5_000,
  totalTimeoutMs: 15_000,
  maxResponseBytes: 4_096,
  connectionsPerOrigin: 32,
  propagateTrace: false,
};

class BlockedAddressError extends Error {
  readonly code = 'HERALD_BLOCKED_ADDRESS';
}

/**
 * POSTs with keep-alive pools, connect and total timeouts, a capped response read and no
 * redirects. Host names are resolved by a lookup that checks every address against the endpoint
 * policy and hands the socket only a checked one, so a DNS answer that changed since the webhook
 * was saved (rebinding) gains nothing.
 */
export class DeliveryHttpClient {
  private readonly agent: Agent;
  private readonly policy: EndpointPolicy;
  private readonly options: HttpClientOptions;

  constructor(
    policy: EndpointPolicy,
    options: Partial<HttpClientOptions> = {},
    resolve: Resolve = systemResolve,
  ) {
    this.policy = policy;
    this.options = { ...defaultHttpClientOptions, ...options };
    const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
      resolve(hostname).then(
        (addresses) => {
          const blocked = addresses.map((a) => blockedAddress(a, policy)).find(Boolean);
          if (blocked || addresses.length === 0) {
            callback(new BlockedAddressError(`${hostname}: ${blocked ?? 'no address'}`), '', 4);
          } else if (lookupOptions.all) {
            callback(
              null,
              addresses.map((address) => ({ address, family: isIP(address) })),
            );
          } else {
            callback(null, addresses[0]!, isIP(addresses[0]!));
          }
        },
        (error: NodeJS.ErrnoException) => callback(error, '', 4),
      );
    };
    this.agent = new Agent({
      connections: this.options.connectionsPerOrigin,
      connect: { timeout: this.options.connectTimeoutMs, lookup },
      headersTimeout: this.options.totalTimeoutMs,
      bodyTimeout: this.options.totalTimeoutMs,
    });
  }

  /** One POST, in a client span of its own (the URL is not recorded: it may hold a secret). */
  post(url: string, headers: Record<string, string>, body: string): Promise<AttemptOutcome> {
    return inSpan('POST', { kind: SpanKind.CLIENT, attributes: requestAttributes(url) }, async (span) => {
      const sent = this.options.propagateTrace ? { ...traceHeaders(), ...headers } : headers;
      const outcome = await this.send(url, sent, body);
      recordOutcome(span, outcome);
      return outcome;
    });
  }

  private async send(url: string, headers: Record<string, string>, body: string): Promise<AttemptOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    try {
      // IP literals never reach the lookup: check them here.
      const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
      const blocked = isIP(host) ? blockedAddress(host, this.policy) : null;
      if (blocked) throw new BlockedAddressError(blocked);

      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Herald-Webhooks/1.0', ...headers },
        body,
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.options.totalTimeoutMs),
      });
      const text = await this.readCapped(response.body);
      const responseHeaders: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      return {
        kind: 'response',
        statusCode: response.statusCode,
        headers: responseHeaders,
        body: text,
        durationMs: elapsed(),
      };
    } catch (error) {
      return { kind: 'error', ...classify(error), durationMs: elapsed() };
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Reads at most maxResponseBytes; a longer body is cut off (and its connection not reused). */
  private async readCapped(stream: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= this.options.maxResponseBytes) {
        stream.destroy();
        break;
      }
    }
    // PostgreSQL text cannot hold NUL: a receiver's bytes are kept as text without them.
    return Buffer.concat(chunks)
      .subarray(0, this.options.maxResponseBytes)
      .toString('utf8')
      .replaceAll('\0', '');
  }
}

function requestAttributes(url: string): Attributes {
  const parsed = URL.parse(url);
  return {
    [ATTR_HTTP_REQUEST_METHOD]: 'POST',
    ...(parsed && {
      [ATTR_SERVER_ADDRESS]: parsed.hostname,
      [ATTR_SERVER_PORT]: Number(parsed.port) || (parsed.protocol === 'https:' ? 443 : 80),
    }),
  };
}

/** As HTTP client spans do: a 4xx or 5xx is an error, as is no answer. */
function recordOutcome(span: Span, outcome: AttemptOutcome): void {
  if (outcome.kind === 'response') {
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, outcome.statusCode);
    if (outcome.statusCode >= 400) {
      span.setAttribute(ATTR_ERROR_TYPE, String(outcome.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  } else {
    span.setAttribute(ATTR_ERROR_TYPE, outcome.errorClass);
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message });
  }
}

function classify(error: unknown): { errorClass: ErrorClass; message: string } {
  const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err.code ?? err.cause?.code ?? '';
  const message = (err.message ?? String(error)).replaceAll('\0', '');
  if (error instanceof BlockedAddressError || err.cause instanceof BlockedAddressError) {
    return { errorClass: 'ssrf', message: `refused to connect: ${message}` };
  }
  if (err.name === 'TimeoutError' || err.name === 'AbortError' || /TIMEOUT/.test(code)) {
    return { errorClass: 'timeout', message };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { errorClass: 'dns', message };
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH')
    return { errorClass: 'connect', message };
  if (/CERT|SSL|TLS/.test(code)) return { errorClass: 'tls', message };
  return { errorClass: 'network', message };
}
