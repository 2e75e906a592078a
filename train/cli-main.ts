// The `smkd` command's entry (bin/smkd.mjs): `smkd train ...` loads only its own command, which takes the
// run lock before the engine and the trainer load, so a second trainer on a run directory is refused in
// about 0.4 s (0.5 s when both start at once, on a quiet 2-core machine) rather than after the whole
// command line has loaded; every other command loads the whole program (cli.ts).
import { engineLoaded, trainCommand } from './commands/train.js';
import { runProgram, smkdProgram } from './run-program.js';

/** Run the command line; exits with 0, 1 on an error, or 130 / 143 / 129 when Ctrl-C, SIGTERM or SIGHUP stopped a run (after its checkpoint). */
export async function main(argv: string[]): Promise<void> {
  if (argv[2] !== 'train') return (await import('./cli.js')).main(argv);
  await runProgram(smkdProgram([trainCommand()]), argv, () => engineLoaded);
}
