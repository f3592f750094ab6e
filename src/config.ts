import ipaddr from 'ipaddr.js';
import { z } from 'zod';

const isCidr = (value: string) => {
  try {
    ipaddr.parseCIDR(value);
    return true;
  } catch {
    return false;
  }
};

/** The only module that reads process.env. Every problem is reported at once; see loadConfig. */

/** An unset or empty variable means "use the default". */
const unsetIfEmpty = (value: unknown) => (value === '' ? undefined : value);
const integer = () => z.preprocess(unsetIfEmpty, z.coerce.number().int());

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const serverSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: integer().pipe(z.number().min(0).max(65535)).default(4000),
  production: z.boolean(),
  maxRequestBytes: integer().pipe(z.number().positive()).default(1_048_576),
  shutdownGraceMs: integer().pipe(z.number().positive()).default(10_000),
  /** GraphQL requests a second a token may make, where its tenant's plan does not say. */
  rateLimitPerSecond: integer().pipe(z.number().min(1)).default(200),
});

const databaseSchema = z.object({
  /** Unset: embedded PGlite under dataDir. */
  url: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  poolMax: integer().pipe(z.number().positive()).default(20),
  /** How long a batched statement of the hot paths may run before it is cancelled (its work is retried). */
  statementTimeoutMs: integer().pipe(z.number().positive()).default(30_000),
});

const natsSchema = z.object({
  /** Unset: the in-process bus (single node). Comma-separated for a cluster. */
  url: optionalString,
  /** First token of every subject and stream name, so several deployments (or test runs) share a server. */
  prefix: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,31}$/, 'lowercase letters, digits and _, starting with a letter')
    .default('herald'),
  /** JetStream replicas of each stream; 3 on a 3-node cluster. */
  replicas: integer().pipe(z.number().min(1).max(5)).default(1),
  /** How long JetStream remembers a message id to drop a duplicate publish. */
  duplicateWindowMs: integer().pipe(z.number().positive()).default(600_000),
});

const authSchema = z.object({
  /** The operator's bearer token. Embedded mode generates one under dataDir when unset. */
  adminToken: optionalString.pipe(z.string().min(24, 'must be at least 24 characters').optional()),
});

/** A 256-bit key as standard base64 (44 characters, one `=`): exactly what `openssl rand -base64 32` prints. */
const key32 = z.string().regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, 'must be base64 of 32 bytes');

const webhooksSchema = z.object({
  /** AES-256-GCM key for webhook secrets at rest, base64 of 32 bytes. Embedded mode generates one under dataDir. */
  // Any base64 of 32 bytes, as it always was: a deployment's key must keep working.
  secretKey: optionalString.pipe(
    z
      .string()
      .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be base64 of 32 bytes')
      .optional(),
  ),
  /** Accept http:// endpoint URLs (self-hosting, tests). https only otherwise. */
  allowHttp: z.preprocess(
    unsetIfEmpty,
    z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
  ),
  /** Networks endpoints may be in although private or loopback, e.g. "10.1.0.0/16,127.0.0.1/32". */
  allowedCidrs: optionalString
    .transform((v) => (v ? v.split(',').map((s) => s.trim()) : []))
    .pipe(z.array(z.string().refine((c) => isCidr(c), 'each must be a CIDR such as 10.0.0.0/8'))),
  /** How long the previous secret keeps signing after a rotation. */
  rotationGraceMs: integer()
    .pipe(z.number().min(0))
    .default(24 * 3600_000),
});

const msList = optionalString.pipe(
  z
    .string()
    .regex(/^\d+(,\d+)*$/, 'comma-separated milliseconds, e.g. 0,5000,300000')
    .transform((v) => v.split(',').map(Number))
    .optional(),
);

const deliverySchema = z.object({
  /** Attempts in flight per worker process. */
  concurrency: integer().pipe(z.number().min(1).max(10_000)).default(256),
  /**
   * Deliveries queued for the workers (not yet settled) past which a dispatcher makes no more: the
   * events behind wait on their stream.
   */
  maxQueued: integer().pipe(z.number().min(1)).default(4_000),
  /** Delay before each attempt; the default is DESIGN's 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
  retryScheduleMs: msList,
  connectTimeoutMs: integer().pipe(z.number().positive()).default(5_000),
  requestTimeoutMs: integer().pipe(z.number().positive()).default(15_000),
  maxInFlightPerEndpoint: integer().pipe(z.number().min(1)).default(8),
  circuitFailures: integer().pipe(z.number().min(1)).default(5),
  circuitOpenMs: integer().pipe(z.number().min(0)).default(30_000),
  /** A webhook failing without a success for this long is disabled. */
  autoDisableAfterMs: integer()
    .pipe(z.number().positive())
    .default(5 * 24 * 3600_000),
  /** Attempts and events older than this are pruned. */
  retentionMs: integer()
    .pipe(z.number().positive())
    .default(30 * 24 * 3600_000),
  /** How often the pruning runs. */
  retentionIntervalMs: integer().pipe(z.number().positive()).default(3_600_000),
  /** How long a worker trusts its cached copy of a tenant's webhooks if a change announcement is lost. */
  webhookCacheTtlMs: integer().pipe(z.number().positive()).default(30_000),
});

const liveSchema = z.object({
  /** Items waiting for one subscriber before it is cut off as too slow. */
  bufferMessages: integer().pipe(z.number().min(2)).default(2_000),
  /** Bytes (as stored on the bus) waiting for one subscriber before it is cut off as too slow. */
  bufferBytes: integer()
    .pipe(z.number().min(1024))
    .default(8 * 1024 * 1024),
  /** Most missed items a resumed subscription replays; further behind is CURSOR_EXPIRED. */
  replayLimit: integer().pipe(z.number().min(1)).default(1_000),
  /** WebSocket ping interval; a socket that misses a pong for as long again is terminated. */
  keepAliveMs: integer().pipe(z.number().min(1_000)).default(12_000),
  /** Live subscriptions one token may hold open in one API process (graphql-ws and SSE together). */
  maxPerToken: integer().pipe(z.number().min(1)).default(5_000),
  /** Live subscriptions one WebSocket may hold open. */
  maxPerSocket: integer().pipe(z.number().min(1)).default(100),
});

const inboundSchema = z.object({
  /** The largest body a source accepts (its own maxBytes may be lower); larger is 413. */
  maxBytes: integer()
    .pipe(
      z
        .number()
        .min(1024)
        .max(64 * 1024 * 1024),
    )
    .default(1_048_576),
  /** Requests a second one source accepts, where the source does not say; more is 429. */
  requestsPerSecond: integer().pipe(z.number().min(1)).default(100),
  /**
   * The base of sources' URLs given to senders (`https://hooks.example.com`); unset: the address
   * the GraphQL request came to.
   */
  publicUrl: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
});

const auditSchema = z.object({
  /** HMAC key of the audit checkpoints, base64 of 32 bytes. Unset: derived from HERALD_SECRET_KEY. */
  checkpointKey: optionalString.pipe(key32.optional()),
  /** Entries past a tenant's last checkpoint that make the next one due. */
  checkpointEvery: integer().pipe(z.number().min(1).max(1_000_000)).default(1_000),
  /** Longest an entry waits for a checkpoint to cover it (plus one poll, at most 5 s); a day at most. */
  checkpointIntervalSeconds: integer().pipe(z.number().min(1).max(86_400)).default(300),
});

const metricsSchema = z.object({
  /**
   * A listener of its own for GET /metrics (every role; a worker has no other port), open to
   * whoever reaches it. Unset: the API port serves /metrics to the operator token, and a worker
   * serves none.
   */
  port: integer().pipe(z.number().min(0).max(65535)).optional(),
  host: z.string().min(1).default('127.0.0.1'),
});

/** `true` or `false` in any case (as OTEL_* flags are); unset or empty is `fallback`. */
const flag = (fallback: 'true' | 'false') =>
  z.preprocess(
    (value) => (typeof value === 'string' ? unsetIfEmpty(value.toLowerCase()) : value),
    z
      .enum(['true', 'false'])
      .default(fallback)
      .transform((v) => v === 'true'),
  );

/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is set: the standard OTEL_* variables. The
 * exporter also reads its own (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, certificates).
 */
const tracingSchema = z.object({
  /** OTLP/HTTP base URL; traces go to its /v1/traces. */
  endpoint: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  /** The traces URL itself; wins over endpoint. */
  tracesEndpoint: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  disabled: flag('false'),
  /** Unset: herald-<role> (herald-api, herald-worker, herald-all). */
  serviceName: optionalString,
  /** `key=value,key=value` added to the resource. */
  resourceAttributes: optionalString,
  sampler: z.preprocess(
    unsetIfEmpty,
    z
      .enum([
        'always_on',
        'always_off',
        'traceidratio',
        'parentbased_always_on',
        'parentbased_always_off',
        'parentbased_traceidratio',
      ])
      .default('parentbased_always_on'),
  ),
  /** The ratio of the traceidratio samplers. */
  samplerArg: z.preprocess(unsetIfEmpty, z.coerce.number()).pipe(z.number().min(0).max(1)).default(1),
  scheduleDelayMs: integer().pipe(z.number().min(0)).default(5_000),
  exportTimeoutMs: integer().pipe(z.number().positive()).default(30_000),
  maxQueueSize: integer().pipe(z.number().min(1)).default(2_048),
  maxExportBatchSize: integer().pipe(z.number().min(1)).default(512),
  /** Send traceparent/tracestate to webhook endpoints: off, so receivers learn nothing of Herald's traces. */
  propagateToEndpoints: flag('false'),
});

const configSchema = z
  .object({
    dataDir: z.string().min(1).default('.data'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    server: serverSchema,
    database: databaseSchema,
    nats: natsSchema,
    auth: authSchema,
    webhooks: webhooksSchema,
    delivery: deliverySchema,
    live: liveSchema,
    audit: auditSchema,
    inbound: inboundSchema,
    metrics: metricsSchema,
    tracing: tracingSchema,
  })
  .superRefine((config, ctx) => {
    if (config.audit.checkpointKey && config.audit.checkpointKey === config.webhooks.secretKey) {
      ctx.addIssue({
        code: 'custom',
        path: ['audit', 'checkpointKey'],
        message: 'must differ from HERALD_SECRET_KEY: one key, one use',
      });
    }
    if (config.server.production && !config.auth.adminToken) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'adminToken'], message: 'required in production' });
    }
    if (config.live.replayLimit * 2 > config.live.bufferMessages) {
      ctx.addIssue({
        code: 'custom',
        path: ['live', 'replayLimit'],
        message:
          'must be at most half of HERALD_LIVE_BUFFER: a replay is queued whole, with room left for live items',
      });
    }
    if (config.metrics.port && config.metrics.port === config.server.port) {
      ctx.addIssue({ code: 'custom', path: ['metrics', 'port'], message: 'must differ from PORT' });
    }
    if (config.server.production && !config.webhooks.secretKey) {
      ctx.addIssue({ code: 'custom', path: ['webhooks', 'secretKey'], message: 'required in production' });
    }
  });

export type Config = z.infer<typeof configSchema>;

/**
 * The environment variable of each setting, in the shape of the config: the one list of them (the
 * README's table follows it). `server.production` is NODE_ENV=production.
 */
const variables = {
  dataDir: 'HERALD_DATA_DIR',
  logLevel: 'LOG_LEVEL',
  server: {
    host: 'HOST',
    port: 'PORT',
    maxRequestBytes: 'HERALD_MAX_REQUEST_BYTES',
    shutdownGraceMs: 'HERALD_SHUTDOWN_GRACE_MS',
    rateLimitPerSecond: 'HERALD_RATE_LIMIT_PER_SECOND',
  },
  database: {
    url: 'DATABASE_URL',
    poolMax: 'DATABASE_POOL_MAX',
    statementTimeoutMs: 'DATABASE_STATEMENT_TIMEOUT_MS',
  },
  nats: {
    url: 'NATS_URL',
    prefix: 'HERALD_NATS_PREFIX',
    replicas: 'HERALD_NATS_REPLICAS',
    duplicateWindowMs: 'HERALD_NATS_DUPLICATE_WINDOW_MS',
  },
  auth: { adminToken: 'HERALD_ADMIN_TOKEN' },
  webhooks: {
    secretKey: 'HERALD_SECRET_KEY',
    allowHttp: 'HERALD_ALLOW_HTTP',
    allowedCidrs: 'HERALD_ALLOWED_CIDRS',
    rotationGraceMs: 'HERALD_SECRET_ROTATION_GRACE_MS',
  },
  delivery: {
    concurrency: 'HERALD_DELIVERY_CONCURRENCY',
    maxQueued: 'HERALD_MAX_QUEUED_DELIVERIES',
    retryScheduleMs: 'HERALD_RETRY_SCHEDULE_MS',
    connectTimeoutMs: 'HERALD_CONNECT_TIMEOUT_MS',
    requestTimeoutMs: 'HERALD_REQUEST_TIMEOUT_MS',
    maxInFlightPerEndpoint: 'HERALD_MAX_IN_FLIGHT_PER_ENDPOINT',
    circuitFailures: 'HERALD_CIRCUIT_FAILURES',
    circuitOpenMs: 'HERALD_CIRCUIT_OPEN_MS',
    autoDisableAfterMs: 'HERALD_AUTO_DISABLE_AFTER_MS',
    retentionMs: 'HERALD_RETENTION_MS',
    retentionIntervalMs: 'HERALD_RETENTION_INTERVAL_MS',
    webhookCacheTtlMs: 'HERALD_WEBHOOK_CACHE_TTL_MS',
  },
  live: {
    bufferMessages: 'HERALD_LIVE_BUFFER',
    bufferBytes: 'HERALD_LIVE_BUFFER_BYTES',
    replayLimit: 'HERALD_LIVE_REPLAY_LIMIT',
    keepAliveMs: 'HERALD_WS_KEEPALIVE_MS',
    maxPerToken: 'HERALD_LIVE_MAX_PER_TOKEN',
    maxPerSocket: 'HERALD_LIVE_MAX_PER_SOCKET',
  },
  audit: {
    checkpointKey: 'HERALD_AUDIT_CHECKPOINT_KEY',
    checkpointEvery: 'HERALD_AUDIT_CHECKPOINT_EVERY',
    checkpointIntervalSeconds: 'HERALD_AUDIT_CHECKPOINT_INTERVAL_SECONDS',
  },
  inbound: {
    maxBytes: 'HERALD_INBOUND_MAX_BYTES',
    requestsPerSecond: 'HERALD_INBOUND_REQUESTS_PER_SECOND',
    publicUrl: 'HERALD_PUBLIC_URL',
  },
  metrics: { port: 'HERALD_METRICS_PORT', host: 'HERALD_METRICS_HOST' },
  tracing: {
    endpoint: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    tracesEndpoint: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    disabled: 'OTEL_SDK_DISABLED',
    serviceName: 'OTEL_SERVICE_NAME',
    resourceAttributes: 'OTEL_RESOURCE_ATTRIBUTES',
    sampler: 'OTEL_TRACES_SAMPLER',
    samplerArg: 'OTEL_TRACES_SAMPLER_ARG',
    scheduleDelayMs: 'OTEL_BSP_SCHEDULE_DELAY',
    exportTimeoutMs: 'OTEL_BSP_EXPORT_TIMEOUT',
    maxQueueSize: 'OTEL_BSP_MAX_QUEUE_SIZE',
    maxExportBatchSize: 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
    propagateToEndpoints: 'HERALD_PROPAGATE_TRACE_TO_ENDPOINTS',
  },
} as const;

type Variables = { readonly [key: string]: string | Variables };

/** The settings as the environment gives them, in the config's shape, before parsing. */
function read(names: Variables, env: NodeJS.ProcessEnv): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(names).map(([key, name]) => [key, typeof name === 'string' ? env[name] : read(name, env)]),
  );
}

/** Each setting's path (`server.port`) and its variable. */
function flatten(names: Variables, prefix = ''): [path: string, name: string][] {
  return Object.entries(names).flatMap(([key, name]) =>
    typeof name === 'string'
      ? [[`${prefix}${key}`, name] as [string, string]]
      : flatten(name, `${prefix}${key}.`),
  );
}

const envNames = flatten(variables);

function fromEnv(env: NodeJS.ProcessEnv) {
  const settings = read(variables, env);
  return {
    ...settings,
    server: { ...(settings.server as object), production: env.NODE_ENV === 'production' },
  };
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** Parses the environment; throws ConfigError listing every problem (entry points print it and exit 1). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(fromEnv(env));
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    parsed.error.issues.map((issue) => {
      const key = issue.path.join('.');
      // The variable whose setting holds the path (a list's items name their list's variable).
      const name = envNames.find(([path]) => key === path || key.startsWith(`${path}.`))?.[1];
      return `${name ?? key}: ${issue.message}`;
    }),
  );
}
