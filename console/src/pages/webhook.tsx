import { useState, type FormEvent } from 'react';
import { request } from '../api/client.ts';
import { graphql } from '../gql/gql.ts';
import { Link } from '../router.tsx';
import {
  describedBy,
  failed,
  FieldMessage,
  FormMessage,
  formErrors,
  noErrors,
  type FormErrors,
} from '../ui/errors.tsx';
import { Badge, Empty, Show, Time, useQuery } from '../ui/states.tsx';
import { WebhookCharts } from './webhook-charts.tsx';
import { DRAFT_FIELDS, SecretOnce, WebhookForm, type WebhookDraft } from './webhook-form.tsx';

const WebhookDetail = graphql(`
  query ConsoleWebhook($id: ID!) {
    webhook(id: $id) {
      id
      name
      url
      isActive
      disabledAt
      disabledReason
      subscribedEvents
      createdAt
      managedBy
    }
    deliveries(filter: { webhookId: $id }, first: 20) {
      edges {
        node {
          id
          eventType
          status
          attempts
          lastStatusCode
          createdAt
        }
      }
    }
  }
`);

const UpdateWebhook = graphql(`
  mutation ConsoleUpdateWebhook($input: UpdateWebhookInput!) {
    updateWebhook(input: $input) {
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
      ... on MissingScopeError {
        path
      }
    }
  }
`);

const DisableWebhook = graphql(`
  mutation ConsoleDisableWebhook($input: DisableWebhookInput!) {
    disableWebhook(input: $input) {
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

const EnableWebhook = graphql(`
  mutation ConsoleEnableWebhook($input: WebhookIdInput!) {
    enableWebhook(input: $input) {
      __typename
      ... on Error {
        message
      }
    }
  }
`);

const RotateSecret = graphql(`
  mutation ConsoleRotateWebhookSecret($input: RotateWebhookSecretInput!) {
    rotateWebhookSecret(input: $input) {
      __typename
      ... on RotateWebhookSecretPayload {
        secret
      }
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

export function WebhookPage({ id }: { id: string }) {
  const { loaded, reload } = useQuery(WebhookDetail, { id });
  const [editing, setEditing] = useState(false);
  const [editErrors, setEditErrors] = useState<FormErrors>(noErrors);
  const [stateErrors, setStateErrors] = useState<FormErrors>(noErrors);
  const [reason, setReason] = useState('');
  const [graceHours, setGraceHours] = useState('24');
  const [secret, setSecret] = useState<string>();

  const save = async (draft: WebhookDraft) => {
    const { updateWebhook: result } = await request(UpdateWebhook, {
      input: { id, url: draft.url, name: draft.name || null, subscribedEvents: draft.subscribedEvents },
    });
    if (result.__typename !== 'WebhookPayload') return setEditErrors(formErrors(result, DRAFT_FIELDS));
    setEditErrors(noErrors);
    setEditing(false);
    reload();
  };
  const setActive = async (event: FormEvent, active: boolean) => {
    event.preventDefault();
    try {
      const result = active
        ? (await request(EnableWebhook, { input: { id } })).enableWebhook
        : (await request(DisableWebhook, { input: { id, ...(reason && { reason }) } })).disableWebhook;
      if (result.__typename !== 'WebhookPayload') return setStateErrors(formErrors(result, ['reason']));
      setStateErrors(noErrors);
      setReason('');
      reload();
    } catch (error) {
      setStateErrors(failed(error));
    }
  };
  const rotate = async (event: FormEvent) => {
    event.preventDefault();
    // Number('') is 0: an emptied field would end the old secret at once.
    if (!graceHours.trim()) {
      return setStateErrors({ fields: { graceSeconds: 'Enter how many hours, 0 to end it now' } });
    }
    try {
      const { rotateWebhookSecret: result } = await request(RotateSecret, {
        input: { id, graceSeconds: Math.round(Number(graceHours) * 3600) },
      });
      if (result.__typename !== 'RotateWebhookSecretPayload')
        return setStateErrors(formErrors(result, ['graceSeconds']));
      setStateErrors(noErrors);
      setSecret(result.secret);
    } catch (error) {
      setStateErrors(failed(error));
    }
  };

  return (
    <Show loaded={loaded} what="the webhook">
      {({ webhook, deliveries }) =>
        !webhook ? (
          <Empty>
            This webhook does not exist (any more). <Link to="/webhooks">All webhooks</Link>
          </Empty>
        ) : (
          <>
            <div className="page-head">
              <h1>{webhook.name ?? webhook.url}</h1>
              <Badge value={webhook.isActive ? 'ACTIVE' : 'DISABLED'} />
            </div>
            <p className="muted">
              <code>{webhook.url}</code> · created <Time at={webhook.createdAt} /> · managed by{' '}
              {webhook.managedBy}
              {webhook.disabledReason && <> · disabled: {webhook.disabledReason}</>}
            </p>
            {secret && <SecretOnce secret={secret} onDone={() => setSecret(undefined)} />}
            <WebhookCharts webhookId={webhook.id} />
            <section className="card" aria-labelledby="settings">
              <h2 id="settings">Settings</h2>
              {editing ? (
                <WebhookForm
                  initial={{
                    name: webhook.name ?? '',
                    url: webhook.url,
                    subscribedEvents: webhook.subscribedEvents,
                  }}
                  submitLabel="Save"
                  errors={editErrors}
                  onSubmit={save}
                  onCancel={() => {
                    setEditing(false);
                    setEditErrors(noErrors);
                  }}
                />
              ) : (
                <>
                  <p>
                    Events: <code>{webhook.subscribedEvents.join(', ')}</code>
                  </p>
                  <button type="button" onClick={() => setEditing(true)}>
                    Edit
                  </button>
                </>
              )}
            </section>
            <section className="card" aria-labelledby="state">
              <h2 id="state">State and secret</h2>
              <div className="split">
                {webhook.isActive ? (
                  <form onSubmit={(event) => void setActive(event, false)}>
                    <div className="field">
                      <label htmlFor="disable-reason">Reason for disabling (optional)</label>
                      <input
                        id="disable-reason"
                        value={reason}
                        onChange={(event) => setReason(event.target.value)}
                        {...describedBy('reason-error', stateErrors.fields.reason)}
                      />
                      <FieldMessage id="reason-error" message={stateErrors.fields.reason} />
                    </div>
                    <button type="submit" className="danger">
                      Disable
                    </button>
                  </form>
                ) : (
                  <form onSubmit={(event) => void setActive(event, true)}>
                    <button type="submit">Enable</button>
                  </form>
                )}
                <form onSubmit={(event) => void rotate(event)}>
                  <div className="field">
                    <label htmlFor="grace-hours">Old secret keeps signing for (hours)</label>
                    <input
                      id="grace-hours"
                      type="number"
                      min={0}
                      max={168}
                      value={graceHours}
                      onChange={(event) => setGraceHours(event.target.value)}
                      {...describedBy('graceSeconds-error', stateErrors.fields.graceSeconds)}
                    />
                    <FieldMessage id="graceSeconds-error" message={stateErrors.fields.graceSeconds} />
                  </div>
                  <button type="submit">Rotate secret</button>
                </form>
              </div>
              <FormMessage message={stateErrors.form} />
            </section>
            <section className="card" aria-labelledby="recent">
              <h2 id="recent">Recent deliveries</h2>
              {deliveries.edges.length === 0 ? (
                <Empty>No deliveries yet: publish an event it subscribes to.</Empty>
              ) : (
                <ul className="rows">
                  {deliveries.edges.map(({ node }) => (
                    <li key={node.id}>
                      <Link to={`/deliveries/${encodeURIComponent(node.id)}`}>{node.eventType}</Link>{' '}
                      <Badge value={node.status} /> <span className="muted">{node.attempts} attempt(s)</span>{' '}
                      <Time at={node.createdAt} />
                    </li>
                  ))}
                </ul>
              )}
            </section>
          </>
        )
      }
    </Show>
  );
}
