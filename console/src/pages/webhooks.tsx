import { useState } from 'react';
import { request } from '../api/client.ts';
import { graphql } from '../gql/gql.ts';
import type { WebhookFilter } from '../gql/graphql.ts';
import { Link, navigate } from '../router.tsx';
import { formErrors, noErrors, type FormErrors } from '../ui/errors.tsx';
import { Badge, Empty, Show, Time, useQuery } from '../ui/states.tsx';
import { DRAFT_FIELDS, SecretOnce, WebhookForm, type WebhookDraft } from './webhook-form.tsx';

const Webhooks = graphql(`
  query ConsoleWebhooks($filter: WebhookFilter, $after: String) {
    webhooks(filter: $filter, first: 50, after: $after) {
      edges {
        node {
          id
          name
          url
          isActive
          subscribedEvents
          lastSuccessAt
          lastFailureAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const CreateWebhook = graphql(`
  mutation ConsoleCreateWebhook($input: CreateWebhookInput!) {
    createWebhook(input: $input) {
      __typename
      ... on CreateWebhookPayload {
        secret
        webhook {
          id
        }
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
      ... on MissingScopeError {
        path
      }
    }
  }
`);

type ActiveFilter = 'all' | 'active' | 'disabled';

export function WebhooksPage() {
  const [search, setSearch] = useState('');
  const [active, setActive] = useState<ActiveFilter>('all');
  const [eventType, setEventType] = useState('');
  const [after, setAfter] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [created, setCreated] = useState<{ id: string; secret: string }>();
  const filter: WebhookFilter = {
    ...(search && { search }),
    ...(eventType && { eventType }),
    ...(active !== 'all' && { isActive: active === 'active' }),
  };
  const { loaded, reload } = useQuery(Webhooks, { filter, after });
  /** A changed filter starts again from its first page. */
  const refine =
    <T,>(set: (value: T) => void) =>
    (value: T) => {
      setAfter(null);
      set(value);
    };

  const create = async (draft: WebhookDraft) => {
    const input = {
      url: draft.url,
      subscribedEvents: draft.subscribedEvents,
      ...(draft.name && { name: draft.name }),
    };
    const { createWebhook: result } = await request(CreateWebhook, { input });
    if (result.__typename !== 'CreateWebhookPayload') return setErrors(formErrors(result, DRAFT_FIELDS));
    setErrors(noErrors);
    setCreating(false);
    setCreated({ id: result.webhook.id, secret: result.secret ?? '' });
    reload();
  };

  return (
    <>
      <div className="page-head">
        <h1>Webhooks</h1>
        {!creating && (
          <button type="button" onClick={() => setCreating(true)}>
            New webhook
          </button>
        )}
      </div>
      {created && (
        <SecretOnce
          secret={created.secret}
          onDone={() => {
            setCreated(undefined);
            navigate(`/webhooks/${encodeURIComponent(created.id)}`);
          }}
        />
      )}
      {creating && (
        <section className="card" aria-labelledby="new-webhook">
          <h2 id="new-webhook">New webhook</h2>
          <WebhookForm
            initial={{ name: '', url: '', subscribedEvents: [] }}
            submitLabel="Create webhook"
            errors={errors}
            onSubmit={create}
            onCancel={() => {
              setCreating(false);
              setErrors(noErrors);
            }}
          />
        </section>
      )}
      <form
        className="filters"
        role="search"
        aria-label="Filter webhooks"
        onSubmit={(e) => e.preventDefault()}
      >
        <div className="field">
          <label htmlFor="webhook-search">Search name or URL</label>
          <input
            id="webhook-search"
            type="search"
            value={search}
            onChange={(e) => refine(setSearch)(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="webhook-event-type">Receives event type</label>
          <input
            id="webhook-event-type"
            value={eventType}
            onChange={(e) => refine(setEventType)(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="webhook-active">State</label>
          <select
            id="webhook-active"
            value={active}
            onChange={(e) => refine(setActive)(e.target.value as ActiveFilter)}
          >
            <option value="all">All</option>
            <option value="active">Active</option>
            <option value="disabled">Disabled</option>
          </select>
        </div>
      </form>
      <Show loaded={loaded} what="webhooks">
        {({ webhooks }) =>
          webhooks.edges.length === 0 ? (
            <Empty>
              {Object.keys(filter).length
                ? 'No webhook matches these filters.'
                : 'No webhooks yet: create the first one.'}
            </Empty>
          ) : (
            <>
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">Webhooks</caption>
                  <thead>
                    <tr>
                      <th scope="col">Webhook</th>
                      <th scope="col">Events</th>
                      <th scope="col">State</th>
                      <th scope="col">Last success</th>
                      <th scope="col">Last failure</th>
                    </tr>
                  </thead>
                  <tbody>
                    {webhooks.edges.map(({ node }) => (
                      <tr key={node.id}>
                        <td>
                          <Link to={`/webhooks/${encodeURIComponent(node.id)}`}>{node.name ?? node.url}</Link>
                          {node.name && <div className="muted small">{node.url}</div>}
                        </td>
                        <td className="small">{node.subscribedEvents.join(', ')}</td>
                        <td>
                          <Badge value={node.isActive ? 'ACTIVE' : 'DISABLED'} />
                        </td>
                        <td>
                          <Time at={node.lastSuccessAt} />
                        </td>
                        <td>
                          <Time at={node.lastFailureAt} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {webhooks.pageInfo.hasNextPage && (
                <button
                  type="button"
                  className="quiet"
                  onClick={() => setAfter(webhooks.pageInfo.endCursor ?? null)}
                >
                  Next page
                </button>
              )}
            </>
          )
        }
      </Show>
    </>
  );
}
