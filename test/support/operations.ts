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
