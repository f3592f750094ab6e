import { useEffect, useState } from 'react';
import { request } from '../api/client.ts';
import { subscribeLive } from '../api/live.ts';
import { graphql } from '../gql/gql.ts';
import { Link } from '../router.tsx';
import { failed, FormMessage, formErrors, noErrors, type FormErrors } from '../ui/errors.tsx';
import { Badge, Empty, Show, Time, useQuery } from '../ui/states.tsx';

const DeliveryDetail = graphql(`
  query ConsoleDelivery($id: ID!) {
    delivery(id: $id) {
      id
      eventType
      status
      attempts
      createdAt
      succeededAt
      nextAttemptAt
      lastError
      webhookId
      webhook {
        name
        url
      }
      event {
        idempotencyKey
        current
      }
      attemptLog {
        attempt
        createdAt
        status
        statusCode
        responseTimeMs
        response
        error
        errorClass
        url
      }
    }
  }
`);

/** The webhook's attempts as they happen: the page reloads when one is of this delivery. */
const AttemptsOfWebhook = graphql(`
  subscription ConsoleDeliveryUpdates($webhookId: ID, $after: String) {
    deliveryAttempted(webhookId: $webhookId, after: $after) {
      deliveryId
      streamCursor
    }
  }
`);

const Redeliver = graphql(`
  mutation ConsoleRedeliver($input: RedeliverInput!) {
    redeliver(input: $input) {
      __typename
      ... on Error {
        message
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

export function DeliveryPage({ id }: { id: string }) {
  const { loaded, reload } = useQuery(DeliveryDetail, { id });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [queued, setQueued] = useState(false);
  const [busy, setBusy] = useState(false);
  const webhookId = loaded.state === 'ready' ? loaded.data.delivery?.webhookId : undefined;
  useEffect(() => {
    if (!webhookId) return;
    return subscribeLive(AttemptsOfWebhook, { webhookId }, (data) => data.deliveryAttempted, {
      onItem: (attempt) => attempt.deliveryId === id && reload(),
      onState: () => {},
      onGap: reload,
    });
  }, [webhookId, id, reload]);
  const redeliver = async () => {
    setBusy(true);
    try {
      const { redeliver: result } = await request(Redeliver, { input: { deliveryId: id } });
      if (result.__typename !== 'DeliveryPayload') return setErrors(formErrors(result, []));
      setErrors(noErrors);
      setQueued(true);
      reload();
    } catch (error) {
      setErrors(failed(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Show loaded={loaded} what="the delivery">
      {({ delivery }) =>
        !delivery ? (
          <Empty>
            This delivery does not exist (any more). <Link to="/deliveries">Live deliveries</Link>
          </Empty>
        ) : (
          <>
            <div className="page-head">
              <h1>
                Delivery of <code>{delivery.eventType}</code>
              </h1>
              <Badge value={delivery.status} />
              <button type="button" onClick={() => void redeliver()} disabled={busy}>
                Redeliver
              </button>
              <button type="button" className="quiet" onClick={reload}>
                Refresh
              </button>
            </div>
            <FormMessage message={errors.form} />
            {queued && (
              <p className="notice" role="status">
                Queued again: its next attempt appears below and in the live stream.
              </p>
            )}
            <dl className="facts">
              <dt>Webhook</dt>
              <dd>
                <Link to={`/webhooks/${encodeURIComponent(delivery.webhookId)}`}>
                  {delivery.webhook?.name ?? delivery.webhook?.url ?? 'deleted'}
                </Link>
              </dd>
              <dt>Created</dt>
              <dd>
                <Time at={delivery.createdAt} />
              </dd>
              <dt>Succeeded</dt>
              <dd>
                <Time at={delivery.succeededAt} />
              </dd>
              <dt>Next attempt</dt>
              <dd>
                <Time at={delivery.nextAttemptAt} />
              </dd>
              <dt>Event</dt>
              <dd>{delivery.event ? <code>{delivery.event.idempotencyKey}</code> : 'pruned'}</dd>
            </dl>
            <h2>Attempts ({delivery.attempts})</h2>
            {delivery.attemptLog.length === 0 ? (
              <Empty>No attempt yet: the first is on its way.</Empty>
            ) : (
              <ol className="attempts" reversed>
                {[...delivery.attemptLog].reverse().map((attempt) => (
                  <li key={attempt.attempt} className="card" data-testid="attempt">
                    <h3>
                      Attempt #{attempt.attempt} <Badge value={attempt.status} />
                    </h3>
                    <dl className="facts">
                      <dt>At</dt>
                      <dd>
                        <Time at={attempt.createdAt} />
                      </dd>
                      <dt>Status code</dt>
                      <dd>{attempt.statusCode ?? 'no response'}</dd>
                      <dt>Response time</dt>
                      <dd>{attempt.responseTimeMs} ms</dd>
                      <dt>Error class</dt>
                      <dd>{attempt.errorClass ?? '—'}</dd>
                      {attempt.error && (
                        <>
                          <dt>Error</dt>
                          <dd>{attempt.error}</dd>
                        </>
                      )}
                    </dl>
                    <details>
                      <summary>Response body</summary>
                      <pre>{attempt.response ?? '(empty)'}</pre>
                    </details>
                  </li>
                ))}
              </ol>
            )}
            {delivery.event?.current !== undefined && (
              <details>
                <summary>Event payload</summary>
                <pre>{JSON.stringify(delivery.event.current, null, 2)}</pre>
              </details>
            )}
          </>
        )
      }
    </Show>
  );
}
