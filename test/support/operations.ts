import { graphql } from '../gql/index.ts';

/** Operations several suites run; codegen types them from schema/schema.graphql. */

export const UpsertEventType = graphql(`
  mutation UpsertEventType($input: UpsertEventTypeInput!) {
    upsertEventType(input: $input) {
      __typename
      ... on UpsertEventTypePayload {
        eventType {
          name
          group
          deprecated
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
    }
  }
`);

export const PublishEvent = graphql(`
  mutation PublishEvent($input: PublishEventInput!) {
    publishEvent(input: $input) {
      __typename
      ... on PublishEventPayload {
        duplicate
        event {
          id
          type
          meta {
            module
            model
            action
          }
          current
          previous
          occurredAt
          idempotencyKey
        }
      }
      ... on ValidationError {
        message
        fields {
          path
          message
        }
      }
      ... on ConflictError {
        message
      }
    }
  }
`);

export const EventPublished = graphql(`
  subscription EventPublished($types: [String!]) {
    eventPublished(types: $types) {
      id
      type
      current
      idempotencyKey
      meta {
        model
      }
    }
  }
`);

export const CreateTenant = graphql(`
  mutation CreateTenant($input: CreateTenantInput!) {
    createTenant(input: $input) {
      __typename
      ... on CreateTenantPayload {
        tenant {
          id
          name
        }
        token
      }
    }
  }
`);

export const Viewer = graphql(`
  query Viewer {
    viewer {
      operator
      client
      scopes
      tenant {
        id
        name
      }
      token {
        id
        name
        prefix
      }
    }
  }
`);

export const CreateApiToken = graphql(`
  mutation CreateApiToken($input: CreateApiTokenInput!) {
    createApiToken(input: $input) {
      __typename
      ... on CreateApiTokenPayload {
        token
        apiToken {
          id
          name
          prefix
          scopes
          client
          expiresAt
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on ForbiddenError {
        message
      }
    }
  }
`);

export const RevokeApiToken = graphql(`
  mutation RevokeApiToken($input: RevokeApiTokenInput!) {
    revokeApiToken(input: $input) {
      __typename
      ... on RevokeApiTokenPayload {
        apiToken {
          id
          revokedAt
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

export const ApiTokens = graphql(`
  query ApiTokens($first: Int, $after: String) {
    apiTokens(first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          name
          revokedAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const AuditLogs = graphql(`
  query AuditLogs($first: Int, $after: String, $filter: AuditLogFilter) {
    auditLogs(first: $first, after: $after, filter: $filter) {
      edges {
        cursor
        node {
          id
          action
          sequence
          executor {
            type
            id
            name
          }
          related {
            type
            id
            name
          }
          relationName
          relationId
          metadata
          ip
          userAgent
          requestId
          createdAt
          hash
          previousHash
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const AuditLogById = graphql(`
  query AuditLogById($id: ID!) {
    auditLog(id: $id) {
      id
      action
    }
  }
`);

export const VerifyAuditTrail = graphql(`
  query VerifyAuditTrail {
    verifyAuditTrail {
      ok
      checked
      firstBrokenSequence
      reason
    }
  }
`);

export const NodeById = graphql(`
  query NodeById($id: ID!) {
    node(id: $id) {
      __typename
      id
    }
  }
`);

export const CreateWebhook = graphql(`
  mutation CreateWebhook($input: CreateWebhookInput!) {
    createWebhook(input: $input) {
      __typename
      ... on CreateWebhookPayload {
        secret
        created
        webhook {
          ...WebhookFields
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on PlanLimitError {
        limit
      }
    }
  }
`);

export const WebhookFields = graphql(`
  fragment WebhookFields on Webhook {
    id
    name
    url
    isActive
    subscribedEvents
    externalId
    managedBy
    disabledAt
    disabledReason
    createdAt
    updatedAt
  }
`);
