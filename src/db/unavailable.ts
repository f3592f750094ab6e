/**
 * Whether an error means the database could not be reached or dropped the connection (a restart,
 * a failover), as opposed to a fault in the statement: the client should try again later.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let e = error;
  for (let depth = 0; depth < 8 && e instanceof Error; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    // 08: connection exceptions; 57014: a statement cancelled past its time; 57P: shut down, restarting.
    if (typeof code === 'string' && (unreachable.has(code) || /^(08|57014|57P)/.test(code))) return true;
    if (
      /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(
        e.message,
      )
    )
      return true;
  }
  return false;
}

/** Socket errors of a connection attempt or an open connection. */
const unreachable = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);
