import { graphql } from '../gql/index.ts';
import type { CreateInboundSourceInput } from '../gql/graphql.ts';
import type { Gql } from './app.ts';

/** Operations the inbound suites share; codegen types them from schema/schema.graphql. */

export const InboundSourceFields = graphql(`
  fragment InboundSourceFields on InboundSource {
    id
    name
    status
    format
    url
    previousUrlExpiresAt
    verification {
      preset
      liveSecrets
      hmac {
        algorithm
        encoding
        header
        prefix
        signedContent
        timestampHeader
        toleranceSeconds
      }
    }
    eventType {
      fixed
      bodyPath
      header
    }
    maxBytes
    allowedMethods
    updatedAt
  }
`);

export const CreateInboundSource = graphql(`
  mutation CreateInboundSource($input: CreateInboundSourceInput!) {
    createInboundSource(input: $input) {
      __typename
      ... on InboundSourcePayload {
        source {
          ...InboundSourceFields
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

export const UpdateInboundSource = graphql(`
  mutation UpdateInboundSource($input: UpdateInboundSourceInput!) {
    updateInboundSource(input: $input) {
      __typename
      ... on InboundSourcePayload {
        source {
          ...InboundSourceFields
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

export const InboundRequestFields = graphql(`
  fragment InboundRequestFields on InboundRequest {
    id
    sourceId
    method
    path
    headers
    contentType
    bodyBytes
    bodySha256
    outcome
    statusCode
    reason
    verification
    verificationDetail
    parseStatus
    parseError
    idempotencyKey
    eventId
    createdAt
  }
`);

export const InboundRequests = graphql(`
  query InboundRequests($first: Int, $after: String, $filter: InboundRequestFilter) {
    inboundRequests(first: $first, after: $after, filter: $filter) {
      edges {
        node {
          ...InboundRequestFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const InboundRequestDetail = graphql(`
  query InboundRequestDetail($id: ID!) {
    inboundRequest(id: $id) {
      ...InboundRequestFields
      bodyText
      bodyBase64
      parsed
      duplicateOf {
        id
      }
      replayOf {
        id
      }
      event {
        id
        type
        current
      }
    }
  }
`);

/** A source of the caller's tenant; throws when it is refused. */
export async function sourceOf(gql: Gql, input: CreateInboundSourceInput) {
  const created = (await gql(CreateInboundSource, { input })).data!.createInboundSource;
  if (created.__typename !== 'InboundSourcePayload') throw new Error(JSON.stringify(created));
  return created.source;
}

/** The newest 100 requests of a source's inbound log, newest first. */
export async function inboundLog(gql: Gql, sourceId: string) {
  const { data } = await gql(InboundRequests, { first: 100, filter: { sourceId } });
  return data!.inboundRequests.edges.map((e) => e.node);
}

/** Posts to a source's URL as a sender does; the answer's status and JSON body. */
export async function post(
  url: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<{ status: number; body: { id: string | null; outcome?: string; error?: { code: string } } }> {
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: method === 'GET' ? undefined : typeof body === 'string' ? body : new Uint8Array(body),
  });
  return { status: response.status, body: (await response.json()) as never };
}

/** The GraphQL id of a request whose raw id a sender was answered with. */
export const requestNodeId = (id: string) => Buffer.from(`InboundRequest:${id}`).toString('base64');
