import { useEffect, useState } from 'react';
import { subscribeLive, type LiveState } from '../api/live.ts';
import { graphql } from '../gql/gql.ts';
import type { AuditLogFilter } from '../gql/graphql.ts';
import { Empty, Show, Time, useQuery } from '../ui/states.tsx';
import { LiveIndicator } from './live-indicator.tsx';

const AuditLogs = graphql(`
  query ConsoleAuditLogs($filter: AuditLogFilter, $after: String) {
    auditLogs(filter: $filter, first: 50, after: $after) {
      edges {
        node {
          id
          sequence
          action
          createdAt
          relationName
          relationId
          executor {
            type
            name
          }
          metadata
          hash
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const VerifyAuditTrail = graphql(`
  query ConsoleVerifyAuditTrail {
    verifyAuditTrail {
      ok
      checked
      checkpointsChecked
      lastCheckpointSequence
      firstBrokenSequence
      reason
    }
  }
`);

const AuditLogAdded = graphql(`
  subscription ConsoleAuditLogAdded($after: String) {
    auditLogAdded(after: $after) {
      sequence
      streamCursor
    }
  }
`);

/** The chain's state, recomputed by Herald: the reason and the first broken link when it is not intact. */
function ChainStatus({ generation }: { generation: number }) {
  const { loaded, reload } = useQuery(VerifyAuditTrail, {});
  useEffect(() => {
    if (generation) reload();
  }, [generation, reload]);
  return (
    <Show loaded={loaded} what="the chain's verification">
      {({ verifyAuditTrail: v }) => (
        <p className={`chain ${v.ok ? 'ok' : 'bad'}`} role="status" data-testid="chain-status">
          {v.ok
            ? `Chain verified: ${v.checked} entries, ${v.checkpointsChecked} keyed checkpoints${
                v.lastCheckpointSequence ? ` (newest at #${v.lastCheckpointSequence})` : ''
              }.`
            : `Chain broken at #${v.firstBrokenSequence ?? '?'}: ${v.reason ?? 'unknown reason'}.`}
        </p>
      )}
    </Show>
  );
}

export function AuditPage() {
  const [action, setAction] = useState('');
  const [relationName, setRelationName] = useState('');
  const [from, setFrom] = useState('');
  const [after, setAfter] = useState<string | null>(null);
  const [state, setState] = useState<LiveState>('connecting');
  /** Bumped by each entry committed: the list and the chain's status are read again. */
  const [generation, setGeneration] = useState(0);
  const filter: AuditLogFilter = {
    ...(action && { actions: [action] }),
    ...(relationName && { relationName }),
    ...(from && { from: new Date(from).toISOString() }),
  };
  const { loaded, reload } = useQuery(AuditLogs, { filter, after });

  useEffect(
    () =>
      subscribeLive(AuditLogAdded, {}, (data) => data.auditLogAdded, {
        onItem: () => setGeneration((g) => g + 1),
        onState: setState,
        onGap: () => setGeneration((g) => g + 1),
      }),
    [],
  );
  useEffect(() => {
    if (generation) reload();
  }, [generation, reload]);
  const refine = (set: (value: string) => void) => (value: string) => {
    setAfter(null);
    set(value);
  };

  return (
    <>
      <div className="page-head">
        <h1>Audit log</h1>
        <LiveIndicator state={state} />
      </div>
      <ChainStatus generation={generation} />
      <form
        className="filters"
        role="search"
        aria-label="Filter the audit log"
        onSubmit={(e) => e.preventDefault()}
      >
        <div className="field">
          <label htmlFor="audit-action">Action</label>
          <input
            id="audit-action"
            placeholder="webhook.created"
            value={action}
            onChange={(e) => refine(setAction)(e.target.value.trim())}
          />
        </div>
        <div className="field">
          <label htmlFor="audit-relation">Object type</label>
          <input
            id="audit-relation"
            placeholder="webhook"
            value={relationName}
            onChange={(e) => refine(setRelationName)(e.target.value.trim())}
          />
        </div>
        <div className="field">
          <label htmlFor="audit-from">From</label>
          <input
            id="audit-from"
            type="datetime-local"
            value={from}
            onChange={(e) => refine(setFrom)(e.target.value)}
          />
        </div>
      </form>
      <Show loaded={loaded} what="the audit log">
        {({ auditLogs }) =>
          auditLogs.edges.length === 0 ? (
            <Empty>No audit entries{Object.keys(filter).length ? ' match these filters' : ' yet'}.</Empty>
          ) : (
            <>
              <ol className="audit">
                {auditLogs.edges.map(({ node }) => (
                  <li key={node.id} className="card" data-testid="audit-entry">
                    <div className="audit-head">
                      <span className="muted">#{node.sequence}</span> <code>{node.action}</code>{' '}
                      <span className="muted">
                        by {node.executor.name ?? node.executor.type} · <Time at={node.createdAt} />
                      </span>
                    </div>
                    {node.relationName && (
                      <div className="small muted">
                        {node.relationName} {node.relationId}
                      </div>
                    )}
                    <details>
                      <summary>Details</summary>
                      <pre>{JSON.stringify(node.metadata, null, 2)}</pre>
                      <p className="small muted">
                        hash <code>{node.hash}</code>
                      </p>
                    </details>
                  </li>
                ))}
              </ol>
              {auditLogs.pageInfo.hasNextPage && (
                <button
                  type="button"
                  className="quiet"
                  onClick={() => setAfter(auditLogs.pageInfo.endCursor ?? null)}
                >
                  Older entries
                </button>
              )}
            </>
          )
        }
      </Show>
    </>
  );
}
