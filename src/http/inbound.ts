import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InboundReceiver } from '../inbound/inbound-receiver.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';

/** The path prefix of inbound sources' URLs: `/in/<token>`. */
export const INBOUND_PREFIX = '/in/';

/**
 * `/in/<token>`: hands the request to the receiver, which reads the body within the source's
 * limit, and writes its answer. An answer given before the body was read to its end closes the
 * connection: the rest of a refused upload is never read.
 */
export async function inboundRoute(
  req: IncomingMessage,
  res: ServerResponse,
  deps: { receiver: InboundReceiver; metrics: Pick<Metrics, 'inboundRequests'>; logger: Logger },
): Promise<void> {
  const [path, query] = splitUrl(req.url ?? '/');
  const token = path.slice(INBOUND_PREFIX.length);
  const answer = await deps.receiver.receive({
    token,
    method: req.method ?? 'GET',
    query,
    headers: req.headers,
    clientIp: req.socket.remoteAddress ?? null,
    body: req.iterator({ destroyOnReturn: false }),
  });
  deps.metrics.inboundRequests.inc({ outcome: answer.outcome });
  const body = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    ...answer.headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(answer.bodyRead ? {} : { connection: 'close' }),
  });
  res.end(body);
}

function splitUrl(url: string): [path: string, query: string | null] {
  const at = url.indexOf('?');
  return at < 0 ? [url, null] : [url.slice(0, at), url.slice(at + 1)];
}
