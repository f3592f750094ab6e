type Step = () => unknown;

/**
 * Runs `body`, then every step it deferred, newest first, whatever happened: a failing step does
 * not stop the others. A failure of the body wins (the cleanup failures are printed); otherwise a
 * failed cleanup fails the whole, so nothing is left behind unnoticed.
 */
export async function withCleanup<T>(body: (defer: (step: Step) => void) => Promise<T>): Promise<T> {
  const steps: Step[] = [];
  const undo = async () => {
    const failures: unknown[] = [];
    for (const step of steps.toReversed()) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    }
    return failures;
  };
  let result: T;
  try {
    result = await body((step) => steps.push(step));
  } catch (error) {
    for (const failure of await undo()) console.error('cleanup failed:', failure);
    throw error;
  }
  const failures = await undo();
  if (failures.length > 0) throw new AggregateError(failures, 'cleanup failed');
  return result;
}
