import { readFileSync } from 'node:fs';
import { Kind, parse, print, type GraphQLObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../src/graphql/print-schema.ts';
import { nodeActions } from '../src/graphql/nodes.ts';
import { schema } from '../src/graphql/schema.ts';

describe('schema/schema.graphql', () => {
  it('is the schema the code builds (run `npm run schema` after changing it)', () => {
    const committed = readFileSync(new URL('../schema/schema.graphql', import.meta.url), 'utf8');
    expect(committed).toBe(printedSchema());
  });

  it('keeps every operation of the design contract, with its arguments and type', () => {
    const contract = `
      type Query {
        node(id: ID!): Node
        viewer: Viewer!
        eventTypes(group: String): [EventType!]!
        eventTypeGroups: [EventTypeGroup!]!
        webhooks(first: Int, after: String, filter: WebhookFilter): WebhookConnection!
        webhook(id: ID!): Webhook
        deliveries(first: Int, after: String, filter: DeliveryFilter): DeliveryConnection!
        delivery(id: ID!): Delivery
        events(first: Int, after: String, filter: EventFilter): EventConnection!
        auditLogs(first: Int, after: String, filter: AuditLogFilter): AuditLogConnection!
        auditLog(id: ID!): AuditLog
        verifyAuditTrail: AuditTrailVerification!
      }
      type Mutation {
        createWebhook(input: CreateWebhookInput!): CreateWebhookResult!
        updateWebhook(input: UpdateWebhookInput!): UpdateWebhookResult!
        deleteWebhook(input: DeleteWebhookInput!): DeleteWebhookResult!
        rotateWebhookSecret(input: RotateWebhookSecretInput!): RotateWebhookSecretResult!
        publishEvent(input: PublishEventInput!): PublishEventResult!
        sendTestEvent(input: SendTestEventInput!): SendTestEventResult!
        redeliver(input: RedeliverInput!): RedeliverResult!
        replayDeliveries(input: ReplayDeliveriesInput!): ReplayDeliveriesResult!
        createApiToken(input: CreateApiTokenInput!): CreateApiTokenResult!
        revokeApiToken(input: RevokeApiTokenInput!): RevokeApiTokenResult!
      }
      type Subscription {
        deliveryAttempted(webhookId: ID, statuses: [DeliveryStatus!]): DeliveryAttempt!
        auditLogAdded: AuditLog!
        eventPublished(types: [String!]): Event!
      }`;
    const { definitions } = parse(contract);
    let checked = 0;
    for (const definition of definitions) {
      if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
      const built = schema.getType(definition.name.value) as GraphQLObjectType;
      for (const field of definition.fields ?? []) {
        const actual = built.getFields()[field.name.value];
        expect(actual, field.name.value).toBeDefined();
        expect(String(actual!.type), field.name.value).toBe(print(field.type));
        for (const arg of field.arguments ?? []) {
          const builtArg = actual!.args.find((a) => a.name === arg.name.value);
          expect(builtArg && String(builtArg.type), `${field.name.value}(${arg.name.value})`).toBe(
            print(arg.type),
          );
        }
        checked++;
      }
    }
    expect(checked).toBe(25);
  });
});

describe('node lookups', () => {
  it('every Node type loads by id through the permissions table', () => {
    const nodeTypes = schema.getPossibleTypes(schema.getType('Node') as never).map((type) => type.name);
    expect(nodeTypes.length).toBeGreaterThan(5);
    expect(nodeTypes.filter((name) => !nodeActions.has(name))).toEqual([]);
  });
});
