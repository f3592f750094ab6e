import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { inject } from 'vitest';
import WebSocket from 'ws';
import { startApp, type App, type Roles } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import type { PublishEventInput } from '../gql/graphql.ts';
import { CreateTenant, CreateWebhook, EventPublished, PublishEvent, UpsertEventType } from './operations.ts';
import { waitFor } from './wait.ts';

export type Mode = 'production' | 'embedded';
export const modes: Mode[] = ['production', 'embedded'];

/**
 * Production mode: a database and a stream prefix of the app's own, named after the run's (the
 * run's teardown removes them): apps of different suites run side by side with different
 * settings, and must not work on each other's queues. Embedded: PGlite in a temp dir, in-process bus.
 */
export function modeEnv(mode: Mode): { env: Record<string, string>; cleanup: () => void } {
  if (mode === 'production') {
    const own = randomBytes(3).toString('hex');
    return {
      env: {
        DATABASE_URL: `${inject('databaseUrl')}_${own}`,
        NATS_URL: inject('natsUrl'),
        HERALD_NATS_PREFIX: `${inject('natsPrefix')}_${own}`,
        HERALD_SECRET_KEY: inject('secretKey'),
      },
      cleanup: () => {},
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'herald-test-'));
  return { env: { HERALD_DATA_DIR: dir }, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export type Gql = <R, V>(
  document: TypedDocumentNode<R, V>,
  variables: V,
  options?: { token?: string | null; headers?: Record<string, string> },
) => Promise<ExecutionResult<R> & { status: number }>;

/** Runs typed operations over HTTP against `url` with `token` unless told otherwise; the raw status comes along. */
export function httpExecutor(url: string, token: string): Gql {
  return async (document, variables, { token: bearer = token, headers = {} } = {}) => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...headers,
      },
      body: JSON.stringify({ query: print(document), variables }),
    });
    return { status: response.status, ...((await response.json()) as ExecutionResult<never>) };
  };
}

/** A graphql-ws client for a Herald at `url`. */
export const wsClient = (url: string, token: string): Client =>
  createClient({
    url: `${url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });

/**
 * A graphql-ws client whose socket can stop reading, as a client too slow to keep up does: what
 * the server sends piles up in the TCP buffers until the server stops being able to write.
 */
export function pausableWsClient(url: string, token: string) {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      sockets.push(this);
    }
  }
  const raw = (socket: WebSocket | undefined) => (socket as unknown as { _socket: Socket })._socket;
  return {
    client: createClient({
      url: `${url.replace('http', 'ws')}/graphql`,
      webSocketImpl: Tracked,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    }),
    pause: () => raw(sockets.at(-1)).pause(),
    resume: () => raw(sockets.at(-1)).resume(),
    closed: () => sockets.at(-1)?.readyState === WebSocket.CLOSED,
  };
}

export interface TenantClient {
  tenantId: string;
  /** Its first token: DASHBOARD, every scope. */
  token: string;
  gql: Gql;
}

export interface TestApp {
  app: App;
  url: string;
  /** Production mode: the app's own database. */
  databaseUrl: string | undefined;
  /** The app's stream and subject prefix. */
  natsPrefix: string;
  /** The operator: manages tenants and the catalog. */
  operator: Gql;
  operatorToken: string;
  /** A tenant of this app's own, with a token holding every scope. */
  token: string;
  tenantId: string;
  gql: Gql;
  /** Another tenant, for isolation tests. */
  tenant(name?: string): Promise<TenantClient>;
  /** A graphql-ws client on the same URL; disposed by stop(). */
  ws(options?: { token?: string }): Client;
  stop(): Promise<void>;
}

export async function startTestApp(
  mode: Mode,
  options: { env?: Record<string, string>; roles?: Roles; logger?: Logger } = {},
): Promise<TestApp> {
  const { env, cleanup } = modeEnv(mode);
  const operatorToken = `hrld_test_${randomBytes(18).toString('base64url')}`;
  const config = loadConfig({
    PORT: '0',
    HERALD_ADMIN_TOKEN: operatorToken,
    LOG_LEVEL: 'silent',
    // Tests make bursts no client would: the limits have a suite of their own.
    HERALD_RATE_LIMIT_PER_SECOND: '1000000',
    ...env,
    ...options.env,
  });
  const app = await startApp(
    config,
    options.roles ?? { api: true, worker: true },
    options.logger ?? createLogger('silent'),
  );
  const url = app.url!;
  const clients: Client[] = [];
  const operator = httpExecutor(url, operatorToken);
  const tenant = async (name = 'Tenant'): Promise<TenantClient> => {
    const created = (await operator(CreateTenant, { input: { name } })).data?.createTenant;
    if (created?.__typename !== 'CreateTenantPayload')
      throw new Error(`createTenant failed: ${created?.__typename}`);
    return { tenantId: created.tenant.id, token: created.token, gql: httpExecutor(url, created.token) };
  };
  const own = await tenant('Acme');

  return {
    app,
    url,
    databaseUrl: config.database.url,
    natsPrefix: config.nats.prefix,
    operator,
    operatorToken,
    token: own.token,
    tenantId: own.tenantId,
    gql: own.gql,
    tenant,
    ws({ token: bearer = own.token } = {}) {
      const client = wsClient(url, bearer);
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map(async (c) => c.dispose()));
      await app.stop();
      cleanup();
    },
  };
}

/**
 * Subscribes and collects results in the background. `ready` resolves once the server has
 * registered the subscription (graphql-ws acknowledges nothing per subscribe, so the caller
 * proves it with a first event it publishes itself, see waitFor in the tests).
 */
export function collect<R, V>(client: Client, document: TypedDocumentNode<R, V>, variables: V) {
  const results: ExecutionResult<R>[] = [];
  const iterator = client.iterate<R>({
    query: print(document),
    variables: variables as Record<string, unknown>,
  });
  let failure: unknown;
  const done = (async () => {
    try {
      for await (const result of iterator) results.push(result as ExecutionResult<R>);
    } catch (error) {
      failure = error;
    }
  })();
  return {
    results,
    failure: () => failure,
    async stop() {
      await iterator.return?.();
      await done;
    },
  };
}

/** A name no other test uses, so parallel tests never see each other's events. */
export const uniqueType = (model = 'invoice', action = 'paid') =>
  `t${randomBytes(4).toString('hex')}.${model}.${action}`;

/** A new event type in the catalog, for one test's use only. */
export async function newEventType(operator: Gql, group: string): Promise<string> {
  const type = uniqueType();
  await operator(UpsertEventType, { input: { name: type, group } });
  return type;
}

/** A webhook of the caller's tenant to `url` for `types`; throws when it is refused. */
export async function webhookTo(gql: Gql, url: string, types: string[]) {
  const created = (await gql(CreateWebhook, { input: { url, subscribedEvents: types } })).data!.createWebhook;
  if (created.__typename !== 'CreateWebhookPayload') throw new Error(JSON.stringify(created));
  return { webhookId: created.webhook.id, secret: created.secret! };
}

/** Publishes an event; throws when it is refused. */
export async function publishOrFail(gql: Gql, input: PublishEventInput) {
  const result = (await gql(PublishEvent, { input })).data!.publishEvent;
  if (result.__typename !== 'PublishEventPayload') throw new Error(JSON.stringify(result));
  return result.event;
}

/**
 * Subscribes to eventPublished for `types` and publishes probes of the first type until one
 * arrives; then a marker, which arrives after every probe (one publisher, one subscriber: order
 * holds). From then on the subscriber misses nothing, and its results start empty.
 */
export async function liveEvents(client: Client, gql: Gql, types: string[]) {
  const type = types[0]!;
  const sub = collect(client, EventPublished, { types });
  const keys = () => sub.results.map((r) => r.data?.eventPublished.idempotencyKey);
  let probes = 0;
  await waitFor(
    async () => {
      if (sub.results.length > 0) return true;
      await gql(PublishEvent, { input: { type, idempotencyKey: `${type}/probe-${probes++}` } });
      return false;
    },
    { what: 'the subscription to go live' },
  );
  await gql(PublishEvent, { input: { type, idempotencyKey: `${type}/live` } });
  await waitFor(() => keys().includes(`${type}/live`), { what: 'the marker' });
  sub.results.length = 0;
  return { ...sub, keys };
}

/** The database id inside a relay global id (what audit entries and exports carry). */
export const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
