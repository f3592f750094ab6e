import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventBus } from './bus/bus.ts';
import { streams } from './bus/contracts.ts';
import { MemoryBus } from './bus/memory.ts';
import { NatsBus } from './bus/nats.ts';
import type { Config } from './config.ts';
import { migrate, openOrm, type Orm } from './db/orm.ts';
import { EventTypeService } from './event-types/event-type.service.ts';
import { eventOutbox } from './events/event-outbox.ts';
import { EventService } from './events/event.service.ts';
import { auditOutbox } from './audit/audit-outbox.ts';
import { OutboxRelay } from './util/outbox-relay.ts';
import { AuditService } from './audit/audit.service.ts';
import { AuditCheckpoints, auditCheckpointKey } from './audit/audit-checkpoints.ts';
import { ApiTokenService } from './tenancy/api-token.service.ts';
import { AuthService } from './tenancy/auth.service.ts';
import { TenantService } from './tenancy/tenant.service.ts';
import { SecretBox } from './util/secret-box.ts';
import { WebhookChanges } from './webhooks/webhook-changes.ts';
import { WebhookService } from './webhooks/webhook.service.ts';
import { attemptOutbox } from './deliveries/attempt-outbox.ts';
import { DeliveryService } from './deliveries/delivery.service.ts';
import { graphqlEndpoint } from './graphql/endpoint.ts';
import type { Services as GraphqlServices } from './graphql/context.ts';
import { authenticator } from './http/authenticate.ts';
import { readinessChecks } from './http/health.ts';
import { createServer, type Server } from './http/server.ts';
import { isDatabaseUnavailable } from './db/unavailable.ts';
import { startPipeline } from './deliveries/pipeline.ts';
import { LiveHub } from './live/live-hub.ts';
import { LiveCursors } from './live/cursor.ts';
import { LiveService } from './live/live.service.ts';
import { createLogger, type Logger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { startMetricsServer } from './http/metrics.ts';
import { AppService } from './apps/app.service.ts';
import { FlowService } from './inbound/flow.service.ts';
import { InboundSourceService } from './inbound/inbound-source.service.ts';
import { InboundReceiver } from './inbound/inbound-receiver.ts';
import { InboundRequestService } from './inbound/inbound-request.service.ts';
import { inboundOutbox } from './inbound/inbound-outbox.ts';
import { RateLimits } from './tenancy/rate-limits.ts';
import { startTracing } from './tracing.ts';

export interface Roles {
  /** Serve GraphQL over HTTP and WebSocket. */
  api: boolean;
  /** Run the background work (the outbox relays; later the delivery pipeline). */
  worker: boolean;
}

/** Every service of a running Herald: what GraphQL calls, and authentication. */
export interface Services extends GraphqlServices {
  auth: AuthService;
}

export interface App {
  services: Services;
  /** The API's base URL once started with the api role. */
  url: string | undefined;
  /** Where this process serves its metrics when they have a port of their own (HERALD_METRICS_PORT). */
  metricsUrl: string | undefined;
  stop(): Promise<void>;
}

/**
 * A secret from config, or in embedded mode one generated once and kept under dataDir (production
 * requires the variable; config.ts enforces it).
 */
function configuredOrGenerated(
  config: Config,
  logger: Logger,
  value: string | undefined,
  { file, variable, generate }: { file: string; variable: string; generate: () => string },
): string {
  if (value) return value;
  const path = join(config.dataDir, file);
  if (!existsSync(path)) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(path, `${generate()}\n`, { mode: 0o600 });
  }
  logger.warn({ file: path }, `${variable} is not set: using the one generated in this file`);
  return readFileSync(path, 'utf8').trim();
}

async function openBus(config: Config, logger: Logger, role: string): Promise<EventBus> {
  const { url, replicas, duplicateWindowMs } = config.nats;
  if (url) return NatsBus.connect({ url, replicas, duplicateWindowMs, name: `herald-${role}` }, logger);
  logger.warn('in-process event bus: single node only; set NATS_URL in production');
  return new MemoryBus({ duplicateWindowMs }, logger);
}

/** Wires database, bus, services, the API server and the workers; `stop` undoes it in reverse. */
export async function startApp(
  config: Config,
  roles: Roles,
  logger = createLogger(config.logLevel),
): Promise<App> {
  const role = roles.api && roles.worker ? 'all' : roles.api ? 'api' : 'worker';
  const metrics = new Metrics({ logger }, { role });
  // Listening before any work starts: a port taken stops the start with nothing running yet.
  const metricsServer =
    config.metrics.port === undefined
      ? null
      : await startMetricsServer(metrics, { host: config.metrics.host, port: config.metrics.port }, logger);
  const tracing = startTracing(config.tracing, role, logger);
  const orm: Orm = await openOrm(config, logger);
  await migrate(orm, logger);
  const bus = await openBus(config, logger, role);
  await bus.declareStreams(Object.values(streams(config.nats.prefix)));

  const relayDeps = { isUnavailable: (error: unknown) => bus.isUnavailable(error), logger };
  const auditRelay = new OutboxRelay(auditOutbox(orm, bus, config.nats.prefix), relayDeps);
  const secretKey = configuredOrGenerated(config, logger, config.webhooks.secretKey, {
    file: 'secret-key',
    variable: 'HERALD_SECRET_KEY',
    generate: () => randomBytes(32).toString('base64'),
  });
  const checkpoints = new AuditCheckpoints(
    {
      orm,
      key: auditCheckpointKey(Buffer.from(secretKey, 'base64'), config.audit.checkpointKey),
      bus,
      prefix: config.nats.prefix,
      logger,
    },
    config.audit,
  );
  const audit = new AuditService(orm, auditRelay, checkpoints);
  const operatorToken = configuredOrGenerated(config, logger, config.auth.adminToken, {
    file: 'admin-token',
    variable: 'HERALD_ADMIN_TOKEN',
    generate: () => `hrld_admin_${randomBytes(24).toString('base64url')}`,
  });
  const auth = new AuthService(orm, operatorToken);
  const tokens = new ApiTokenService(orm, audit, auth);
  const eventTypes = new EventTypeService(orm, audit);
  const box = new SecretBox(Buffer.from(secretKey, 'base64'));
  const eventRelay = new OutboxRelay(eventOutbox(orm, bus, config.nats.prefix), relayDeps);
  const inboundRelay = new OutboxRelay(inboundOutbox(orm, bus, config.nats.prefix), relayDeps);
  const inboundSources = new InboundSourceService(
    { orm, audit, eventTypes, box },
    { maxBytes: config.inbound.maxBytes, rotationGraceMs: config.webhooks.rotationGraceMs },
  );
  const receiver = new InboundReceiver(
    {
      orm,
      sources: inboundSources,
      eventTypes,
      events: eventRelay,
      announcements: inboundRelay,
      limits: new RateLimits({ defaultPerSecond: config.inbound.requestsPerSecond }),
      logger,
    },
    {
      requestsPerSecond: config.inbound.requestsPerSecond,
      maxBytes: config.inbound.maxBytes,
      statementTimeoutMs: config.database.statementTimeoutMs,
    },
  );
  const hub = new LiveHub({ bus, logger, metrics }, { ...config.live, readyTimeoutMs: 5_000 });
  const webhooks = new WebhookService(
    { orm, audit, eventTypes, box },
    { policy: config.webhooks, rotationGraceMs: config.webhooks.rotationGraceMs },
  );
  const services: Services = {
    auth,
    audit,
    tenants: new TenantService({ orm, audit, tokens, auth }),
    tokens,
    eventTypes,
    webhooks,
    deliveries: new DeliveryService({ orm, audit, eventTypes }),
    events: new EventService(
      { orm, eventTypes, outbox: eventRelay },
      { statementTimeoutMs: config.database.statementTimeoutMs },
    ),
    live: new LiveService(
      {
        hub,
        cursors: new LiveCursors(Buffer.from(secretKey, 'base64')),
      },
      { prefix: config.nats.prefix, maxPerToken: config.live.maxPerToken },
    ),
    inboundSources,
    inboundRequests: new InboundRequestService({ orm, audit, sources: inboundSources, receiver, eventTypes }),
    flows: new FlowService(
      { orm, audit, eventTypes, sources: inboundSources },
      { maxBytes: config.inbound.maxBytes },
    ),
    apps: new AppService({ orm, audit, eventTypes, webhooks, tokens, auth, events: eventRelay }),
  };
  // Every process announces its webhook changes; workers drop their cached copy (startPipeline).
  const webhookChanges = new WebhookChanges(
    { bus, webhooks: services.webhooks, logger },
    { prefix: config.nats.prefix },
  );
  webhookChanges.announce();
  const attemptRelay = new OutboxRelay(attemptOutbox(orm, bus, config.nats.prefix), relayDeps);
  const relays = roles.worker
    ? [eventRelay.start(), auditRelay.start(), attemptRelay.start(), inboundRelay.start()]
    : [];
  const checkpointLoop = roles.worker ? checkpoints.start(logger) : null;
  const pipeline = roles.worker
    ? startPipeline(config, {
        orm,
        bus,
        audit,
        box,
        webhooks: services.webhooks,
        webhookChanges,
        announcements: attemptRelay,
        logger,
        metrics,
      })
    : null;
  if (roles.worker) {
    const outboxes = { events: eventRelay, audit: auditRelay, inbound: inboundRelay, attempts: attemptRelay };
    metrics.read('outboxes', async () => {
      for (const [outbox, relay] of Object.entries(outboxes)) {
        metrics.outboxEntries.set({ outbox }, await relay.depth());
      }
    });
  }
  let server: Server | undefined;
  if (roles.api) {
    const authenticate = authenticator(auth);
    const graphql = graphqlEndpoint({
      config,
      services,
      auth,
      authenticate,
      isUnavailable: isDatabaseUnavailable,
      metrics,
      logger,
    });
    const health = readinessChecks(
      { database: () => orm.em.fork().execute('select 1'), bus: () => bus.ping() },
      logger,
    );
    server = await createServer({
      config,
      graphql,
      audit,
      authenticate,
      health,
      inbound: receiver,
      metrics,
      serveMetrics: config.metrics.port === undefined,
      logger,
    });
    metrics.read('live', () => metrics.liveSubscribers.set(hub.stats().subscribers));
  }
  if (!roles.api && !metricsServer)
    logger.info('no metrics served: set HERALD_METRICS_PORT to scrape this worker');
  logger.info(
    {
      role,
      url: server?.url,
      metrics: metricsServer?.url,
      database: config.database.url ? 'postgres' : 'pglite',
      bus: bus.kind,
    },
    'herald started',
  );

  return {
    services,
    url: server?.url,
    metricsUrl: metricsServer?.url,
    async stop() {
      // Every step runs even when one before it failed (a bus that is down cannot drain).
      const failures: unknown[] = [];
      const step = async (work: () => unknown) => {
        try {
          await work();
        } catch (error) {
          failures.push(error);
        }
      };
      await step(() => services.live.endAll());
      await step(() => server?.close());
      await step(() => metricsServer?.close());
      await step(() => pipeline?.stop());
      await step(() => checkpointLoop?.stop());
      await step(() => Promise.all(relays.map((relay) => relay.stop())));
      await step(() =>
        Promise.all([eventRelay.flush(), auditRelay.flush(), attemptRelay.flush(), inboundRelay.flush()]),
      );
      await step(() => bus.close());
      await step(() => orm.close());
      // Last: the spans of everything stopped above are exported too.
      await step(() => tracing?.stop());
      if (failures.length > 0) throw new AggregateError(failures, 'herald stopped with errors');
      logger.info({ role }, 'herald stopped');
    },
  };
}
