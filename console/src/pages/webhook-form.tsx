import { useState, type FormEvent } from 'react';
import { graphql } from '../gql/gql.ts';
import { useQuery, Show } from '../ui/states.tsx';
import { describedBy, failed, FieldMessage, FormMessage, type FormErrors } from '../ui/errors.tsx';

const EventTypeGroups = graphql(`
  query ConsoleEventTypeGroups {
    eventTypeGroups {
      name
      eventTypes {
        name
        description
        deprecated
      }
    }
  }
`);

/** The fields this form has an input for: a typed error naming another is shown as the form's. */
export const DRAFT_FIELDS = ['url', 'name', 'subscribedEvents'];

export interface WebhookDraft {
  name: string;
  url: string;
  subscribedEvents: string[];
}

const lines = (text: string) =>
  text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);

/** Catalog types are picked from their groups; patterns (invoices.*, *) are typed, one per line. */
function EventPicker({
  selected,
  onChange,
  error,
}: {
  selected: string[];
  onChange: (next: string[]) => void;
  error: string | undefined;
}) {
  const { loaded } = useQuery(EventTypeGroups, {});
  const [patterns, setPatterns] = useState(() => selected.filter((name) => name.includes('*')).join('\n'));
  const typePatterns = (value: string) => {
    const before = lines(patterns);
    const kept = selected.filter((name) => !before.includes(name));
    setPatterns(value);
    onChange([...kept, ...lines(value).filter((name) => !kept.includes(name))]);
  };
  const toggle = (name: string, on: boolean) =>
    onChange(on ? [...selected, name] : selected.filter((other) => other !== name));
  return (
    <fieldset className="event-picker" {...describedBy('subscribedEvents-error', error)}>
      <legend>Event types</legend>
      <Show loaded={loaded} what="the event catalog">
        {({ eventTypeGroups }) =>
          eventTypeGroups.length === 0 ? (
            <p className="muted">The catalog is empty: the operator adds event types.</p>
          ) : (
            eventTypeGroups.map((group) => (
              <fieldset key={group.name} className="group">
                <legend>{group.name}</legend>
                {group.eventTypes.map((type) => (
                  <label key={type.name} className="check" title={type.description ?? undefined}>
                    <input
                      type="checkbox"
                      checked={selected.includes(type.name)}
                      onChange={(event) => toggle(type.name, event.target.checked)}
                    />
                    <code>{type.name}</code>
                    {type.deprecated && <span className="badge warn">deprecated</span>}
                  </label>
                ))}
              </fieldset>
            ))
          )
        }
      </Show>
      <label htmlFor="patterns">Patterns (one per line, e.g. invoices.* or *)</label>
      <textarea
        id="patterns"
        rows={2}
        value={patterns}
        onChange={(event) => typePatterns(event.target.value)}
      />
      <FieldMessage id="subscribedEvents-error" message={error} />
    </fieldset>
  );
}

/** The create and the edit form: errors come back typed, each shown under its field. */
export function WebhookForm({
  initial,
  submitLabel,
  errors,
  onSubmit,
  onCancel,
}: {
  initial: WebhookDraft;
  submitLabel: string;
  errors: FormErrors;
  onSubmit: (draft: WebhookDraft) => Promise<void>;
  onCancel?: () => void;
}) {
  const [draft, setDraft] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setFailure(undefined);
    try {
      await onSubmit(draft);
    } catch (error) {
      setFailure(failed(error).form);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="webhook-form" onSubmit={(event) => void submit(event)} noValidate>
      <div className="field">
        <label htmlFor="webhook-url">Endpoint URL</label>
        <input
          id="webhook-url"
          type="url"
          inputMode="url"
          placeholder="https://example.com/webhooks"
          value={draft.url}
          onChange={(event) => setDraft({ ...draft, url: event.target.value })}
          {...describedBy('url-error', errors.fields.url)}
        />
        <FieldMessage id="url-error" message={errors.fields.url} />
      </div>
      <div className="field">
        <label htmlFor="webhook-name">Name (optional)</label>
        <input
          id="webhook-name"
          value={draft.name}
          onChange={(event) => setDraft({ ...draft, name: event.target.value })}
          {...describedBy('name-error', errors.fields.name)}
        />
        <FieldMessage id="name-error" message={errors.fields.name} />
      </div>
      <EventPicker
        selected={draft.subscribedEvents}
        onChange={(subscribedEvents) => setDraft({ ...draft, subscribedEvents })}
        error={errors.fields.subscribedEvents}
      />
      <FormMessage message={failure ?? errors.form} />
      <div className="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : submitLabel}
        </button>
        {onCancel && (
          <button type="button" className="quiet" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

/** A secret Herald shows once: on creation and on rotation. */
export function SecretOnce({ secret, onDone }: { secret: string; onDone: () => void }) {
  return (
    <section className="secret" aria-labelledby="secret-title" role="alert">
      <h3 id="secret-title">Signing secret — shown once</h3>
      <p>Store it now: Herald will not show it again.</p>
      <code className="secret-value" data-testid="webhook-secret">
        {secret}
      </code>
      <div className="actions">
        <button type="button" onClick={() => void navigator.clipboard?.writeText(secret)}>
          Copy
        </button>
        <button type="button" className="quiet" onClick={onDone}>
          I have stored it
        </button>
      </div>
    </section>
  );
}
