import { InvalidInputError, NotFoundError } from '../../errors.ts';
import {
  inboundOutcomes,
  parseStatuses,
  verificationStatuses,
  type InboundRequest,
} from '../../inbound/inbound-request.entity.ts';
import type { ReplayItem } from '../../inbound/inbound-request.service.ts';
import type { Streamed } from '../../live/cursor.ts';
import { builder } from '../builder.ts';
import { liveAfterArg, liveItem, streamCursorField } from '../live.ts';
import { loadPermitted } from '../nodes.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';
import { EventRef } from './event.ts';
import { InboundSourceRef } from './inbound-source.ts';

const reads = { can: 'inbound.read' } as const;

/** A stored request, read by a query (body lazy) or received live (no body: it is read by id). */
type InboundRequestShape = Omit<InboundRequest, 'body'> & Streamed;

export const InboundOutcomeRef = builder.enumType('InboundOutcome', {
  description:
    'Accepted (answered 200, body kept): ROUTED into an event; RECORDED by a DRAFT source; UNROUTABLE: kept, but it could not become an event (see reason; replay it once fixed); DUPLICATE of an earlier delivery id. Refused: UNAUTHORIZED 401, FORBIDDEN 403 (sender address), NOT_FOUND 404 (INACTIVE source), METHOD_NOT_ALLOWED 405, TOO_LARGE 413, UNSUPPORTED_MEDIA_TYPE 415, RATE_LIMITED 429.',
  values: inboundOutcomes,
});
export const VerificationStatusRef = builder.enumType('InboundVerificationStatus', {
  values: verificationStatuses,
});
export const ParseStatusRef = builder.enumType('InboundParseStatus', { values: parseStatuses });

const utf8 = new TextDecoder('utf-8', { fatal: true });

export const InboundRequestRef = builder.objectRef<InboundRequestShape>('InboundRequest');
builder.node(InboundRequestRef, {
  description: 'One request to an inbound source, accepted or refused, exactly as received: the inbound log.',
  id: { resolve: (request) => request.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'bodyBytes' in value,
  loadMany: loadPermitted('InboundRequest', 'inbound.read', (ids, ctx) =>
    ctx.services.inboundRequests.getMany(ctx.actor, ids),
  ),
  fields: (t) => ({
    sourceId: t.globalID({ resolve: (r) => ({ type: 'InboundSource', id: r.sourceId }) }),
    source: t.field({
      type: InboundSourceRef,
      nullable: true,
      description: 'Null once the source is deleted.',
      resolve: async (r, _args, ctx) =>
        (await ctx.services.inboundSources.getMany(ctx.actor, [r.sourceId]))[0] ?? null,
    }),
    method: t.exposeString('method'),
    path: t.exposeString('path', { description: "The URL's path, its token shortened." }),
    query: t.exposeString('query', { nullable: true }),
    headers: t.expose('headers', {
      type: 'JSON',
      description: 'As received, lower-case names; credentials (Authorization, the API key) are redacted.',
    }),
    contentType: t.exposeString('contentType', { nullable: true }),
    clientIp: t.exposeString('clientIp', { nullable: true }),
    bodyBytes: t.exposeInt('bodyBytes'),
    bodySha256: t.exposeString('bodySha256', {
      nullable: true,
      description: 'Hex SHA-256 of the body received.',
    }),
    bodyText: t.string({
      nullable: true,
      description:
        'The body as UTF-8 text; null when it is not valid UTF-8 (see bodyBase64) or was not kept.',
      resolve: async (r, _args, ctx) => {
        const [body] = await ctx.services.inboundRequests.bodies(ctx.actor, [r.id]);
        if (!body) return null;
        try {
          return utf8.decode(body);
        } catch {
          return null;
        }
      },
    }),
    bodyBase64: t.string({
      nullable: true,
      description: 'The exact bytes received, base64; null when not kept (too large, over the rate).',
      resolve: async (r, _args, ctx) =>
        (await ctx.services.inboundRequests.bodies(ctx.actor, [r.id]))[0]?.toString('base64') ?? null,
    }),
    outcome: t.field({ type: InboundOutcomeRef, resolve: (r) => r.outcome }),
    statusCode: t.exposeInt('statusCode', { description: 'The status Herald answered with.' }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why it was refused, or not routed.' }),
    verification: t.field({ type: VerificationStatusRef, resolve: (r) => r.verification }),
    verificationDetail: t.exposeString('verificationDetail', { nullable: true }),
    parseStatus: t.field({ type: ParseStatusRef, resolve: (r) => r.parseStatus }),
    parseError: t.exposeString('parseError', { nullable: true }),
    parsed: t.field({
      type: 'JSON',
      nullable: true,
      description:
        'The parsed copy of the body (derived again from the bytes); null unless parseStatus is PARSED.',
      resolve: async (r, _args, ctx) => {
        if (r.parseStatus !== 'PARSED') return null;
        const [[body], [source]] = await Promise.all([
          ctx.services.inboundRequests.bodies(ctx.actor, [r.id]),
          ctx.services.inboundSources.getMany(ctx.actor, [r.sourceId]),
        ]);
        if (!body || !source) return null;
        const parsed = ctx.services.inboundRequests.parsed(r, source.format, body);
        return parsed.status === 'PARSED' ? parsed.value : null;
      },
    }),
    idempotencyKey: t.exposeString('idempotencyKey', {
      nullable: true,
      description: "The sender's delivery id, as the source's idempotency selector reads it.",
    }),
    duplicateOf: t.field({
      type: InboundRequestRef,
      nullable: true,
      resolve: async (r, _args, ctx) =>
        r.duplicateOf
          ? ((await ctx.services.inboundRequests.getMany(ctx.actor, [r.duplicateOf]))[0] ?? null)
          : null,
    }),
    replayOf: t.field({
      type: InboundRequestRef,
      nullable: true,
      resolve: async (r, _args, ctx) =>
        r.replayOf
          ? ((await ctx.services.inboundRequests.getMany(ctx.actor, [r.replayOf]))[0] ?? null)
          : null,
    }),
    eventId: t.globalID({
      nullable: true,
      resolve: (r) => (r.eventId ? { type: 'Event', id: r.eventId } : null),
    }),
    event: t.field({
      type: EventRef,
      nullable: true,
      description: 'The event it became. Needs events:read as well.',
      authScopes: { can: 'events.read' },
      resolve: async (r, _args, ctx) =>
        r.eventId ? ((await ctx.services.events.getMany(ctx.actor, [r.eventId]))[0] ?? null) : null,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was received.' }),
    streamCursor: t.string({ ...streamCursorField, resolve: (r) => r.streamCursor ?? null }),
  }),
});

const InboundRequestConnection = builder.connectionObject({
  type: InboundRequestRef,
  name: 'InboundRequestConnection',
});

const InboundRequestFilter = builder.inputType('InboundRequestFilter', {
  fields: (t) => ({
    sourceId: t.globalID({ for: InboundSourceRef }),
    outcomes: t.field({ type: [InboundOutcomeRef] }),
    from: t.field({ type: 'DateTime', description: 'Inclusive.' }),
    to: t.field({ type: 'DateTime', description: 'Exclusive.' }),
  }),
});

builder.queryFields((t) => ({
  inboundRequests: t.field({
    type: InboundRequestConnection,
    description: "Requests to the tenant's inbound sources, newest first.",
    authScopes: reads,
    args: {
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
      filter: t.arg({ type: InboundRequestFilter }),
    },
    resolve: async (_root, args, ctx) => {
      const { sourceId, ...filter } = args.filter ?? {};
      return toConnection(
        await ctx.services.inboundRequests.list(
          ctx.actor,
          { ...filter, sourceId: sourceId?.id },
          pageRequest(args),
        ),
      );
    },
  }),
  inboundRequest: t.field({
    type: InboundRequestRef,
    nullable: true,
    authScopes: reads,
    args: { id: t.arg.globalID({ required: true, for: InboundRequestRef }) },
    resolve: async (_root, { id }, ctx) =>
      (await ctx.services.inboundRequests.getMany(ctx.actor, [id.id]))[0] ?? null,
  }),
}));

const ReplayOutcomeRef = builder.enumType('InboundReplayOutcome', {
  description: 'What a replayed request became, or SKIPPED (see reason).',
  values: [...inboundOutcomes, 'SKIPPED'] as const,
});

const InboundReplayRef = builder.objectRef<ReplayItem>('InboundReplay').implement({
  fields: (t) => ({
    original: t.field({ type: InboundRequestRef, resolve: (item) => item.original }),
    outcome: t.field({ type: ReplayOutcomeRef, resolve: (item) => item.outcome }),
    reason: t.exposeString('reason', { nullable: true }),
    eventType: t.exposeString('eventType', { nullable: true, description: 'The event type it routes to.' }),
    request: t.field({
      type: InboundRequestRef,
      nullable: true,
      description: 'The replay as stored; null on a dry run or when skipped.',
      resolve: (item) => item.request,
    }),
  }),
});

const ReplayInboundRequestsInput = builder.inputType('ReplayInboundRequestsInput', {
  description: 'Up to 100 requests by id, or a source’s requests of a time range (at most 1,000).',
  fields: (t) => ({
    ids: t.globalIDList({ for: InboundRequestRef }),
    sourceId: t.globalID({ for: InboundSourceRef }),
    from: t.field({ type: 'DateTime', description: 'Inclusive.' }),
    to: t.field({ type: 'DateTime', description: 'Exclusive.' }),
    reverify: t.boolean({
      description:
        'Verify each again as at its receipt. Without it, only requests that passed verification are replayed.',
    }),
    dryRun: t.boolean({ description: 'Say what each would become; store nothing.' }),
  }),
});

const ReplayInboundRequestsPayload = builder
  .objectRef<{ items: ReplayItem[] }>('ReplayInboundRequestsPayload')
  .implement({
    fields: (t) => ({
      replayed: t.int({
        description: 'How many were stored again.',
        resolve: (p) => p.items.filter((item) => item.request).length,
      }),
      items: t.field({ type: [InboundReplayRef], resolve: (p) => p.items }),
    }),
  });

builder.mutationFields((t) => ({
  replayInboundRequests: t.field({
    type: ReplayInboundRequestsPayload,
    description:
      'Runs stored requests through their source again, as it is configured now: each replay is a new request (replayOf) and, when it routes, a new event.',
    authScopes: { can: 'inbound.manage' },
    args: { input: t.arg({ type: ReplayInboundRequestsInput, required: true }) },
    errors: {
      types: [InvalidInputError, NotFoundError],
      directResult: true,
      union: { name: 'ReplayInboundRequestsResult' },
    },
    resolve: async (_root, { input }, ctx) => ({
      items: await ctx.services.inboundRequests.replay(ctx.actor, {
        ...input,
        ids: input.ids?.map((id) => id.id),
        sourceId: input.sourceId?.id,
      }),
    }),
  }),
}));

builder.subscriptionFields((t) => ({
  inboundRequestReceived: t.field({
    type: InboundRequestRef,
    description:
      "Requests to the tenant's inbound sources as they are stored, accepted or refused; of one source when given.",
    authScopes: reads,
    args: {
      sourceId: t.arg.globalID({ for: InboundSourceRef }),
      after: t.arg.string(liveAfterArg),
    },
    subscribe: (_root, { sourceId, after }, ctx) =>
      ctx.services.live.inbound(ctx.actor, { sourceId: sourceId?.id, after }),
    resolve: (request) => liveItem(request),
  }),
}));
