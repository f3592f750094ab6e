/** What a mutation's typed error says, keyed by the input field it concerns ("url", "subscribedEvents"). */
export interface FormErrors {
  fields: Record<string, string>;
  /** An error no field carries (a conflict, a plan limit, a refused request). */
  form?: string;
}

export const noErrors: FormErrors = { fields: {} };

interface TypedError {
  __typename?: string;
  message?: string;
  fields?: { path: string[]; message: string }[];
  path?: string[];
}

/** The field an error path names, without the `input` argument: ["input", "url"] → "url". */
const fieldOf = (path: string[]) => path.filter((part) => part !== 'input' && !/^\d+$/.test(part)).join('.');

/** Maps a result union's error member to messages per field; a payload gives none. */
export function formErrors(result: TypedError): FormErrors {
  if (result.__typename === 'ValidationError' && result.fields?.length) {
    return { fields: Object.fromEntries(result.fields.map((f) => [fieldOf(f.path), f.message])) };
  }
  if (result.__typename === 'MissingScopeError' && result.path) {
    return { fields: { [fieldOf(result.path)]: result.message ?? 'Missing scope' } };
  }
  return { fields: {}, form: result.message ?? 'Refused' };
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
