import { useEffect, useRef, useState } from 'react';
import { subscribeLive, type LiveState } from '../api/live.ts';
import { graphql } from '../gql/gql.ts';
import type { ConsoleDeliveryAttemptedSubscription, DeliveryStatus } from '../gql/graphql.ts';
import { Link } from '../router.tsx';
import { Badge, Empty, Time, useQuery } from '../ui/states.tsx';
import { LiveIndicator } from './live-indicator.tsx';

const DeliveryAttempted = graphql(`
  subscription ConsoleDeliveryAttempted($webhookId: ID, $statuses: [DeliveryStatus!], $after: String) {
    deliveryAttempted(webhookId: $webhookId, statuses: $statuses, after: $after) {
      deliveryId
      webhookId
      attempt
      status
      statusCode
      responseTimeMs
      errorClass
      url
      createdAt
      streamCursor
    }
  }
`);

const WebhookChoices = graphql(`
  query ConsoleWebhookChoices {
    webhooks(first: 100) {
      edges {
        node {
          id
          name
          url
        }
      }
    }
  }
`);

const STATUSES: DeliveryStatus[] = ['SUCCEEDED', 'RETRYING', 'FAILED', 'PENDING', 'PAUSED'];
/** The stream keeps the newest rows only: a console left open all day must not grow without bound. */
const KEPT = 200;

type Attempt = ConsoleDeliveryAttemptedSubscription['deliveryAttempted'];

export function DeliveryStreamPage() {
  const [webhookId, setWebhookId] = useState('');
  const [statuses, setStatuses] = useState<DeliveryStatus[]>([]);
  const [rows, setRows] = useState<Attempt[]>([]);
  const [paused, setPaused] = useState(false);
  const [state, setState] = useState<LiveState>('connecting');
  const [gap, setGap] = useState(false);
  /** The newest attempts received while paused, shown when the stream resumes; heldCount counts them all. */
  const held = useRef<Attempt[]>([]);
  const [heldCount, setHeldCount] = useState(0);
  /** Read by the subscription's callback, so set with the toggle: an item arriving before the render is not held. */
  const pausedRef = useRef(paused);
  const { loaded: choices } = useQuery(WebhookChoices, {});

  useEffect(() => {
    setRows([]);
    held.current = [];
    setHeldCount(0);
    setGap(false);
    return subscribeLive(
      DeliveryAttempted,
      { ...(webhookId && { webhookId }), ...(statuses.length && { statuses }) },
      (data) => data.deliveryAttempted,
      {
        onItem: (item) => {
          if (pausedRef.current) {
            held.current = [item, ...held.current].slice(0, KEPT);
            setHeldCount((count) => count + 1);
          } else setRows((current) => [item, ...current].slice(0, KEPT));
        },
        onState: setState,
        onGap: () => setGap(true),
      },
    );
  }, [webhookId, statuses]);

  const togglePause = () => {
    const resuming = pausedRef.current;
    if (resuming) {
      const waiting = held.current;
      held.current = [];
      setHeldCount(0);
      setRows((current) => [...waiting, ...current].slice(0, KEPT));
    }
    pausedRef.current = !resuming;
    setPaused(!resuming);
  };
  const toggleStatus = (status: DeliveryStatus, on: boolean) =>
    setStatuses((current) => (on ? [...current, status] : current.filter((other) => other !== status)));
  const webhookName = (id: string) => {
    if (choices.state !== 'ready') return id;
    const node = choices.data.webhooks.edges.find((edge) => edge.node.id === id)?.node;
    return node ? (node.name ?? node.url) : id;
  };

  return (
    <>
      <div className="page-head">
        <h1>Live deliveries</h1>
        <LiveIndicator state={paused ? 'paused' : state} />
        <button type="button" onClick={togglePause} aria-pressed={paused}>
          {paused ? `Resume${heldCount ? ` (${heldCount} new)` : ''}` : 'Pause'}
        </button>
      </div>
      <form className="filters" aria-label="Filter the stream" onSubmit={(event) => event.preventDefault()}>
        <div className="field">
          <label htmlFor="stream-webhook">Webhook</label>
          <select
            id="stream-webhook"
            value={webhookId}
            onChange={(event) => setWebhookId(event.target.value)}
          >
            <option value="">All webhooks</option>
            {choices.state === 'ready' &&
              choices.data.webhooks.edges.map(({ node }) => (
                <option key={node.id} value={node.id}>
                  {node.name ?? node.url}
                </option>
              ))}
          </select>
        </div>
        <fieldset className="inline">
          <legend>Status after the attempt</legend>
          {STATUSES.map((status) => (
            <label key={status} className="check">
              <input
                type="checkbox"
                checked={statuses.includes(status)}
                onChange={(event) => toggleStatus(status, event.target.checked)}
              />
              {status.toLowerCase()}
            </label>
          ))}
        </fieldset>
      </form>
      {gap && (
        <p className="form-error" role="status">
          The console was away too long to resume: attempts made meanwhile are not shown here (see each
          webhook’s deliveries).
        </p>
      )}
      {rows.length === 0 ? (
        <Empty>Waiting for delivery attempts… Publish an event a webhook subscribes to.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-live="polite" aria-relevant="additions">
            <caption className="visually-hidden">Delivery attempts, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Webhook</th>
                <th scope="col">Attempt</th>
                <th scope="col">Status</th>
                <th scope="col">Response</th>
                <th scope="col">Time</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={`${row.deliveryId}:${row.attempt}`} data-testid="attempt-row">
                  <td>
                    <Link to={`/deliveries/${encodeURIComponent(row.deliveryId)}`}>
                      <Time at={row.createdAt} />
                    </Link>
                  </td>
                  <td className="small">{webhookName(row.webhookId)}</td>
                  <td>#{row.attempt}</td>
                  <td>
                    <Badge value={row.status} />
                  </td>
                  <td>{row.statusCode ?? row.errorClass ?? '—'}</td>
                  <td>{row.responseTimeMs} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
