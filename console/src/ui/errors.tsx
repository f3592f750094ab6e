/** What a mutation's typed error says, keyed by the input field it concerns ("url", "subscribedEvents"). */
export interface FormErrors {
  fields: Record<string, string>;
  /** An error no field carries (a conflict, a plan limit, a refused request). */
  form?: string;
}

export const noErrors: FormErrors = { fields: {} };

/** A request that failed as a whole (network, 429, top-level GraphQL errors): request() throws it. */
export const failed = (error: unknown): FormErrors => ({
  fields: {},
  form: error instanceof Error ? error.message : String(error),
});

interface TypedError {
  __typename?: string;
  message?: string;
  fields?: { path: string[]; message: string }[];
  path?: string[];
}

/** The field an error path names, without the `input` argument: ["input", "url"] → "url". */
const fieldOf = (path: string[]) => path.filter((part) => part !== 'input' && !/^\d+$/.test(part)).join('.');

/**
 * Maps a result union's error member to messages per field; a payload gives none. A field the page
 * has no input for (`shown`: the ones it has), or the input as a whole, goes to the form's message.
 */
export function formErrors(result: TypedError, shown: readonly string[]): FormErrors {
  const named =
    result.__typename === 'ValidationError'
      ? (result.fields ?? []).map((f) => ({ field: fieldOf(f.path), message: f.message }))
      : result.__typename === 'MissingScopeError' && result.path
        ? [{ field: fieldOf(result.path), message: result.message ?? 'Missing scope' }]
        : [];
  if (named.length === 0) return { fields: {}, form: result.message ?? 'Refused' };
  const unshown = named.filter(({ field }) => !shown.includes(field));
  return {
    fields: Object.fromEntries(
      named.filter(({ field }) => shown.includes(field)).map(({ field, message }) => [field, message]),
    ),
    ...(unshown.length && {
      form: unshown.map(({ field, message }) => (field ? `${field}: ${message}` : message)).join('; '),
    }),
  };
}

/** The message shown under a field, linked to its input by aria-describedby. */
export function FieldMessage({ id, message }: { id: string; message: string | undefined }) {
  if (!message) return null;
  return (
    <p className="field-error" id={id} role="alert">
      {message}
    </p>
  );
}

/** Props that tie an input to its error message. */
export const describedBy = (id: string, message: string | undefined) =>
  message ? { 'aria-invalid': true, 'aria-describedby': id } : {};

export function FormMessage({ message }: { message: string | undefined }) {
  if (!message) return null;
  return (
    <p className="form-error" role="alert">
      {message}
    </p>
  );
}
