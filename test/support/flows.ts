import { graphql } from '../gql/index.ts';

/** The fields of flows and flow webhooks the tests read. */
export const FlowFields = graphql(`
  fragment FlowFields on Flow {
    id
    name
    description
    status
    deployedAt
    eventType {
      fixed
      bodyPath
      header
    }
    filter
    mapping
    webhooksCount
  }
`);

export const FlowWebhookFields = graphql(`
  fragment FlowWebhookFields on FlowWebhook {
    id
    flowId
    name
    status
    format
    body
    hmacAlgorithm
    hmacHeader
    hasHmacSecretKey
    url
    source {
      id
      flow {
        id
      }
    }
  }
`);
