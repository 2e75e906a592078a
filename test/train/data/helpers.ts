// Small helpers shared by the data-layer tests.
import * as assert from 'uvu/assert';

/** Asserts that the promise rejects with a message matching `pattern`. */
export async function rejects(run: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  let error: Error | null = null;
  try {
    await run();
  } catch (e) {
    error = e as Error;
  }
  if (!error) assert.unreachable(`expected a rejection matching ${pattern}`);
  else assert.match(error.message, pattern);
}
