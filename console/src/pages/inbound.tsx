import { useEffect, useState } from 'react';
import { subscribeLive, type LiveState } from '../api/live.ts';
import { graphql } from '../gql/gql.ts';
import type { ConsoleInboundRequestReceivedSubscription } from '../gql/graphql.ts';
import { Badge, Empty, Show, Time, useQuery } from '../ui/states.tsx';
import { LiveIndicator } from './live-indicator.tsx';

const InboundSources = graphql(`
  query ConsoleInboundSources {
    inboundSources(first: 100) {
      edges {
        node {
          id
          name
          status
          format
          url
          verification {
            preset
          }
        }
      }
    }
  }
`);

const InboundRequestReceived = graphql(`
  subscription ConsoleInboundRequestReceived($sourceId: ID, $after: String) {
    inboundRequestReceived(sourceId: $sourceId, after: $after) {
      id
      sourceId
      createdAt
      method
      statusCode
      outcome
      verification
      verificationDetail
      reason
      bodyBytes
      streamCursor
    }
  }
`);

type Received = ConsoleInboundRequestReceivedSubscription['inboundRequestReceived'];
const KEPT = 200;

export function InboundPage() {
  const { loaded } = useQuery(InboundSources, {});
  const [sourceId, setSourceId] = useState('');
  const [rows, setRows] = useState<Received[]>([]);
  const [state, setState] = useState<LiveState>('connecting');

  useEffect(() => {
    setRows([]);
    return subscribeLive(
      InboundRequestReceived,
      sourceId ? { sourceId } : {},
      (data) => data.inboundRequestReceived,
      {
        onItem: (item) => setRows((current) => [item, ...current].slice(0, KEPT)),
        onState: setState,
        onGap: () => {},
      },
    );
  }, [sourceId]);
  const sourceName = (id: string) =>
    loaded.state === 'ready'
      ? (loaded.data.inboundSources.edges.find((e) => e.node.id === id)?.node.name ?? id)
      : id;

  return (
    <>
      <h1>Inbound</h1>
      <section aria-labelledby="sources">
        <h2 id="sources">Sources</h2>
        <Show loaded={loaded} what="inbound sources">
          {({ inboundSources }) =>
            inboundSources.edges.length === 0 ? (
              <Empty>No inbound sources yet: create one with createInboundSource (see the README).</Empty>
            ) : (
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">Inbound sources</caption>
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Status</th>
                      <th scope="col">Format</th>
                      <th scope="col">Verification</th>
                    </tr>
                  </thead>
                  <tbody>
                    {inboundSources.edges.map(({ node }) => (
                      <tr key={node.id}>
                        <td>{node.name}</td>
                        <td>
                          <Badge value={node.status} />
                        </td>
                        <td>{node.format}</td>
                        <td>{node.verification.preset.toLowerCase()}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Show>
      </section>
      <section aria-labelledby="tail">
        <div className="page-head">
          <h2 id="tail">Live requests</h2>
          <LiveIndicator state={state} />
        </div>
        <div className="filters">
          <div className="field">
            <label htmlFor="tail-source">Source</label>
            <select id="tail-source" value={sourceId} onChange={(event) => setSourceId(event.target.value)}>
              <option value="">All sources</option>
              {loaded.state === 'ready' &&
                loaded.data.inboundSources.edges.map(({ node }) => (
                  <option key={node.id} value={node.id}>
                    {node.name}
                  </option>
                ))}
            </select>
          </div>
        </div>
        {rows.length === 0 ? (
          <Empty>Waiting for requests to your sources…</Empty>
        ) : (
          <div className="table-wrap">
            <table aria-live="polite" aria-relevant="additions">
              <caption className="visually-hidden">Inbound requests, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Source</th>
                  <th scope="col">Request</th>
                  <th scope="col">Verification</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <tr key={row.id}>
                    <td>
                      <Time at={row.createdAt} />
                    </td>
                    <td>{sourceName(row.sourceId)}</td>
                    <td>
                      {row.method} · {row.bodyBytes} B → {row.statusCode}
                    </td>
                    <td title={row.verificationDetail ?? undefined}>
                      <Badge value={row.verification} />
                    </td>
                    <td title={row.reason ?? undefined}>
                      <Badge value={row.outcome} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
