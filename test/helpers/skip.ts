// Tests that need something outside the repository (a golden file, a data folder): where it is
// missing they are registered as skipped (uvu's `test.skip`, counted in its summary) and their reason
// printed on a `skipped:` line, which scripts/run-tests.mjs lists again at the end of the run.
import type { Callback, Test } from 'uvu';

export type Register<T> = (name: string, handler: Callback<T>) => void;

/** `test` itself where `ready`; otherwise a register that skips each test, with `reason`. */
export function skipUnless<T>(test: Test<T>, ready: boolean, reason: string): Register<T> {
  return (name, handler) => {
    if (ready) return test(name, handler);
    test.skip(name, handler);
    console.log(`skipped: ${name} (${reason})`);
  };
}
