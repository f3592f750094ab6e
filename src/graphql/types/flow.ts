import { InvalidInputError, NotFoundError } from '../../errors.ts';
import { flowStatuses, type Flow } from '../../inbound/flow.entity.ts';
import type { FlowTest } from '../../inbound/flow.service.ts';
import type { EventTypeSelector, InboundSource } from '../../inbound/inbound-source.entity.ts';
import { text } from '../../input.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';
import { InboundOutcomeRef, ParseStatusRef, VerificationStatusRef } from './inbound-request.ts';
import {
  EventTypeSelectorInput,
  EventTypeSelectorRef,
  HmacAlgorithmRef,
  InboundFormatRef,
  InboundSourceRef,
  InboundSourceStatusRef,
  SignatureEncodingRef,
  withoutNulls,
} from './inbound-source.ts';

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

const reads = { can: 'inbound.read' } as const;
const manages = { can: 'inbound.manage' } as const;

const FlowStatusRef = builder.enumType('FlowStatus', {
  description: "DRAFT records its webhooks' requests without routing them, INACTIVE refuses them (404).",
  values: flowStatuses,
});

export const FlowRef = builder.objectRef<Flow>('Flow');
builder.node(FlowRef, {
  description:
    'A group of inbound webhooks with one route into the pipeline: the event type, an optional filter and mapping. A request is routed only when its webhook and its flow are both DEPLOYED.',
  id: { resolve: (flow) => flow.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'deployedAt' in value,
  loadMany: loadPermitted('Flow', 'inbound.read', (ids, ctx) => ctx.services.flows.getMany(ctx.actor, ids)),
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    status: t.field({ type: FlowStatusRef, resolve: (flow) => flow.status }),
    deployedAt: t.expose('deployedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When it was last deployed.',
    }),
    eventType: t.field({
      type: EventTypeSelectorRef,
      description: 'The event type its requests become (the mapping may replace parts of it).',
      resolve: (flow) => flow.eventType,
    }),
    filter: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Which requests become events; the others are recorded as FILTERED. Null: all of them.',
      resolve: (flow) => flow.filter ?? null,
    }),
    mapping: t.field({
      type: 'JSON',
      nullable: true,
      description:
        "The event's current and meta from the request's fields. Null: current is the parsed body.",
      resolve: (flow) => flow.mapping ?? null,
    }),
    webhooksCount: t.loadable({
      type: 'Int',
      resolve: (flow) => flow.id,
      load: (ids: string[], ctx) => ctx.services.inboundSources.webhookCounts(ctx.actor, ids),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const FlowWebhookRef = builder.objectRef<InboundSource>('FlowWebhook').implement({
  description:
    "A flow's inbound trigger (Patchworks' flow webhook): an inbound source of the flow, so its log, replay and live tail are the source's.",
  fields: (t) => ({
    id: t.globalID({
      description: 'The id of its inbound source (for inboundRequests, replay and the live tail).',
      resolve: (webhook) => ({ type: 'InboundSource', id: webhook.id }),
    }),
    flowId: t.globalID({ resolve: (webhook) => ({ type: 'Flow', id: webhook.flowId! }) }),
    flow: t.field({
      type: FlowRef,
      nullable: true,
      resolve: async (webhook, _args, ctx) =>
        (await ctx.services.flows.getMany(ctx.actor, [webhook.flowId!]))[0],
    }),
    name: t.exposeString('name'),
    status: t.field({ type: InboundSourceStatusRef, resolve: (webhook) => webhook.status }),
    format: t.field({ type: InboundFormatRef, resolve: (webhook) => webhook.format }),
    body: t.exposeString('sampleBody', {
      nullable: true,
      description: 'A sample body, for building the flow.',
    }),
    hmacAlgorithm: t.field({
      type: HmacAlgorithmRef,
      nullable: true,
      description: 'Null: requests are not signed.',
      resolve: (webhook) => webhook.verification.hmac?.algorithm ?? null,
    }),
    hmacHeader: t.string({ nullable: true, resolve: (webhook) => webhook.verification.hmac?.header ?? null }),
    hmacEncoding: t.field({
      type: SignatureEncodingRef,
      nullable: true,
      resolve: (webhook) => webhook.verification.hmac?.encoding ?? null,
    }),
    hasHmacSecretKey: t.boolean({
      description: 'The key itself is write-only, sealed at rest.',
      resolve: (webhook) => webhook.verification.preset === 'HMAC',
    }),
    url: t.string({
      description: 'The URL to give the sender: anyone holding it can post, so treat it as a secret.',
      authScopes: manages,
      resolve: (webhook, _args, ctx) => `${ctx.baseUrl}${ctx.services.inboundSources.urlPath(webhook)}`,
    }),
    source: t.field({ type: InboundSourceRef, resolve: (webhook) => webhook }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.objectField(InboundSourceRef, 'flow', (t) =>
  t.field({
    type: FlowRef,
    nullable: true,
    description: 'The flow it is a webhook of: its route decides the event type, filter and mapping.',
    resolve: async (source, _args, ctx) =>
      source.flowId ? (await ctx.services.flows.getMany(ctx.actor, [source.flowId]))[0] : null,
  }),
);

const FlowConnection = builder.connectionObject({ type: FlowRef, name: 'FlowConnection' });
const FlowWebhookConnection = builder.connectionObject({
  type: FlowWebhookRef,
  name: 'FlowWebhookConnection',
});

const FlowFilterInput = builder.inputType('FlowFilter', {
  fields: (t) => ({
    status: t.field({ type: FlowStatusRef }),
    search: t.string({ description: 'Case-insensitive text in the name.', validate: text(255) }),
  }),
});

const TestFlowInput = builder.inputType('TestFlowInput', {
  description: 'A request to try against a flow; exactly one of body, bodyBase64.',
  fields: (t) => ({
    flowId: t.globalID({ required: true, for: FlowRef }),
    webhookId: t.globalID({
      for: InboundSourceRef,
      description:
        "One of the flow's webhooks: the request is verified with its secrets and parsed as its format.",
    }),
    body: t.string(),
    bodyBase64: t.string(),
    headers: t.field({
      type: 'JSON',
      description: 'Header names to values (a string, or a list of strings).',
    }),
    format: t.field({ type: InboundFormatRef, description: 'Without webhookId: JSON by default.' }),
  }),
});

interface TestEvent {
  type: string;
  meta: { module: string | null; model: string; action: string };
  current: unknown;
}

const TestFlowVerificationRef = builder
  .objectRef<FlowTest['verification']>('TestFlowVerification')
  .implement({
    fields: (t) => ({
      status: t.field({ type: VerificationStatusRef, resolve: (v) => v.status }),
      detail: t.exposeString('detail', { nullable: true }),
    }),
  });

const TestFlowFilterRef = builder.objectRef<NonNullable<FlowTest['filter']>>('TestFlowFilter').implement({
  fields: (t) => ({
    matched: t.exposeBoolean('matched'),
    detail: t.exposeString('detail', { description: 'Why: the first condition that decided.' }),
  }),
});

const TestFlowEventRef = builder.objectRef<TestEvent>('TestFlowEvent').implement({
  fields: (t) => ({
    type: t.exposeString('type'),
    module: t.string({ nullable: true, resolve: (e) => e.meta.module }),
    model: t.string({ resolve: (e) => e.meta.model }),
    action: t.string({ resolve: (e) => e.meta.action }),
    current: t.field({ type: 'JSON', nullable: true, resolve: (e) => e.current ?? null }),
  }),
});

const TestFlowPayload = builder.objectRef<FlowTest>('TestFlowPayload').implement({
  description:
    'What the request would become once the flow (and the webhook) are DEPLOYED; nothing is stored.',
  fields: (t) => ({
    outcome: t.field({ type: InboundOutcomeRef, resolve: (r) => r.outcome }),
    reason: t.exposeString('reason', { nullable: true }),
    outcomeNow: t.field({
      type: InboundOutcomeRef,
      description:
        'What a request now becomes with the statuses as they are: the outcome above when DEPLOYED, else RECORDED (DRAFT) or NOT_FOUND (INACTIVE).',
      resolve: (r) => r.outcomeNow,
    }),
    deployed: t.exposeBoolean('deployed', {
      description:
        'Whether a request now is routed so; if not, it is recorded (DRAFT) or refused (INACTIVE).',
    }),
    verification: t.field({ type: TestFlowVerificationRef, resolve: (r) => r.verification }),
    parseStatus: t.field({ type: ParseStatusRef, resolve: (r) => r.parse.status }),
    parseError: t.string({ nullable: true, resolve: (r) => r.parse.error }),
    parsed: t.field({
      type: 'JSON',
      nullable: true,
      resolve: (r) => (r.parse.status === 'PARSED' ? (r.parse.value ?? null) : null),
    }),
    filter: t.field({
      type: TestFlowFilterRef,
      nullable: true,
      description: 'Null when the flow has no filter or the request did not get that far.',
      resolve: (r) => r.filter ?? null,
    }),
    event: t.field({ type: TestFlowEventRef, nullable: true, resolve: (r) => r.event }),
  }),
});

builder.queryFields((t) => ({
  flows: t.field({
    type: FlowConnection,
    description: "The tenant's flows, newest first.",
    authScopes: reads,
    args: {
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
      filter: t.arg({ type: FlowFilterInput }),
    },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.flows.list(ctx.actor, args.filter ?? {}, pageRequest(args))),
  }),
  flow: t.field({
    type: FlowRef,
    nullable: true,
    authScopes: reads,
    args: { id: t.arg.globalID({ required: true, for: FlowRef }) },
    resolve: (_root, { id }, ctx) => ctx.services.flows.find(ctx.actor, id.id),
  }),
  flowWebhooks: t.field({
    type: FlowWebhookConnection,
    description: "A flow's webhooks, newest first.",
    authScopes: reads,
    args: {
      flowId: t.arg.globalID({ required: true, for: FlowRef }),
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
    },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.flows.webhooks(ctx.actor, args.flowId.id, pageRequest(args))),
  }),
  testFlow: t.field({
    type: TestFlowPayload,
    description:
      'What a request would become at a flow: verification, parse, filter, the event. Stores nothing.',
    authScopes: reads,
    args: { input: t.arg({ type: TestFlowInput, required: true }) },
    errors: {
      types: [InvalidInputError, NotFoundError],
      directResult: true,
      union: { name: 'TestFlowResult' },
    },
    resolve: (_root, { input }, ctx) =>
      ctx.services.flows.test(ctx.actor, {
        ...input,
        flowId: input.flowId.id,
        webhookId: input.webhookId?.id,
        headers: input.headers as never,
      }),
  }),
}));

const flowFields = (t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>) => ({
  name: t.string(),
  description: t.string(),
  status: t.field({ type: FlowStatusRef, description: 'DRAFT by default; DEPLOYED records deployedAt.' }),
  eventType: t.field({ type: EventTypeSelectorInput }),
  filter: t.field({
    type: 'JSON',
    description:
      'A condition { field: "body.<path>" | "header.<name>", eq | in | exists | prefix | gt | gte | lt | lte: value }, or { all: [...] }, { any: [...] }, { not: {...} }.',
  }),
  mapping: t.field({
    type: 'JSON',
    description:
      '{ current: { key: "body.<path>" | "header.<name>" }, meta: { module | model | action: { value } | { field } } }.',
  }),
});

const CreateFlowInput = builder.inputType('CreateFlowInput', {
  description: 'name and eventType are required; status is DRAFT by default.',
  fields: (t) => flowFields(t),
});

const UpdateFlowInput = builder.inputType('UpdateFlowInput', {
  description: 'JSON Merge Patch: omit a field to keep it, null clears description, filter or mapping.',
  fields: (t) => ({ id: t.globalID({ required: true, for: FlowRef }), ...flowFields(t) }),
});

const FlowIdInput = (name: string) =>
  builder.inputType(name, { fields: (t) => ({ id: t.globalID({ required: true, for: FlowRef }) }) });

const webhookFields = (t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>) => ({
  name: t.string({ description: '"<flow name>: webhook" by default.' }),
  status: t.field({ type: InboundSourceStatusRef, description: 'DRAFT by default.' }),
  format: t.string({ description: 'csv, json, txt, xml or form (any case); json by default.' }),
  body: t.string({ description: 'A sample body, for building the flow.' }),
  hmacAlgorithm: t.string({
    description: 'sha1, sha256 or sha512 (any case); sha256 when only a key is given. Null: unsigned.',
  }),
  hmacSecretKey: t.string({
    description:
      'At most 128 characters; write-only. A new one rotates: the old keeps verifying for the grace.',
  }),
  hmacHeader: t.string({ description: 'The header the signature comes in; x-signature by default.' }),
  hmacEncoding: t.field({ type: SignatureEncodingRef, description: 'HEX by default.' }),
});

const CreateFlowWebhookInput = builder.inputType('CreateFlowWebhookInput', {
  fields: (t) => ({ flowId: t.globalID({ required: true, for: FlowRef }), ...webhookFields(t) }),
});

const UpdateFlowWebhookInput = builder.inputType('UpdateFlowWebhookInput', {
  description:
    'JSON Merge Patch: omit a field to keep it; hmacAlgorithm or hmacSecretKey null turns signing off.',
  fields: (t) => ({ id: t.globalID({ required: true, for: InboundSourceRef }), ...webhookFields(t) }),
});

const DeleteFlowWebhookInput = builder.inputType('DeleteFlowWebhookInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: InboundSourceRef }) }),
});

const FlowPayload = builder.objectRef<{ flow: Flow }>('FlowPayload').implement({
  fields: (t) => ({ flow: t.field({ type: FlowRef, resolve: (p) => p.flow }) }),
});

const FlowWebhookPayload = builder.objectRef<{ webhook: InboundSource }>('FlowWebhookPayload').implement({
  fields: (t) => ({ webhook: t.field({ type: FlowWebhookRef, resolve: (p) => p.webhook }) }),
});

const withSelector = <T extends { eventType?: unknown }>(input: T) => ({
  ...input,
  eventType: withoutNulls(input.eventType as EventTypeSelector | null | undefined),
});

const changeErrors = [InvalidInputError, NotFoundError];

builder.mutationFields((t) => ({
  createFlow: t.field({
    type: FlowPayload,
    authScopes: manages,
    args: { input: t.arg({ type: CreateFlowInput, required: true }) },
    errors: { types: [InvalidInputError], directResult: true, union: { name: 'CreateFlowResult' } },
    resolve: async (_root, { input }, ctx) => ({
      flow: await ctx.services.flows.create(ctx.actor, withSelector(input) as never),
    }),
  }),
  updateFlow: t.field({
    type: FlowPayload,
    authScopes: manages,
    args: { input: t.arg({ type: UpdateFlowInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'UpdateFlowResult' } },
    resolve: async (_root, { input: { id, ...patch } }, ctx) => ({
      flow: await ctx.services.flows.update(ctx.actor, id.id, withSelector(patch) as never),
    }),
  }),
  deleteFlow: t.field({
    type: FlowPayload,
    description:
      'Deletes the flow and its webhooks (their URLs answer 404); their request logs stay until retention.',
    authScopes: manages,
    args: { input: t.arg({ type: FlowIdInput('DeleteFlowInput'), required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'DeleteFlowResult' } },
    resolve: async (_root, { input }, ctx) => ({
      flow: await ctx.services.flows.delete(ctx.actor, input.id.id),
    }),
  }),
  deployFlow: t.field({
    type: FlowPayload,
    description: "DEPLOYED from now, deployedAt set: its DEPLOYED webhooks' requests become events.",
    authScopes: manages,
    args: { input: t.arg({ type: FlowIdInput('DeployFlowInput'), required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'DeployFlowResult' } },
    resolve: async (_root, { input }, ctx) => ({
      flow: await ctx.services.flows.deploy(ctx.actor, input.id.id),
    }),
  }),
  createFlowWebhook: t.field({
    type: FlowWebhookPayload,
    authScopes: manages,
    args: { input: t.arg({ type: CreateFlowWebhookInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'CreateFlowWebhookResult' } },
    resolve: async (_root, { input }, ctx) => ({
      webhook: await ctx.services.flows.createWebhook(ctx.actor, { ...input, flowId: input.flowId.id }),
    }),
  }),
  updateFlowWebhook: t.field({
    type: FlowWebhookPayload,
    authScopes: manages,
    args: { input: t.arg({ type: UpdateFlowWebhookInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'UpdateFlowWebhookResult' } },
    resolve: async (_root, { input: { id, ...patch } }, ctx) => ({
      webhook: await ctx.services.flows.updateWebhook(ctx.actor, id.id, patch),
    }),
  }),
  deleteFlowWebhook: t.field({
    type: FlowWebhookPayload,
    description: 'Deletes the webhook (its URL answers 404); its request log stays until retention.',
    authScopes: manages,
    args: { input: t.arg({ type: DeleteFlowWebhookInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'DeleteFlowWebhookResult' } },
    resolve: async (_root, { input }, ctx) => ({
      webhook: await ctx.services.flows.deleteWebhook(ctx.actor, input.id.id),
    }),
  }),
}));
