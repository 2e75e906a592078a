// The `smkd` command's entry (bin/smkd.mjs): `smkd train ...` loads only its own command, which takes the
// run lock before the engine and the trainer load, so a second trainer on a run directory is refused in
// about 0.4 s (0.5 s when both start at once, on a quiet 2-core machine) rather than after the whole
// command line has loaded; every other command loads the whole program (cli.ts).
import { Command } from 'commander';
import { engineLoaded, trainCommand } from './commands/train.js';

/** An error's exit code: Interrupted's (130 / 143 / 129 after a stop signal), else 1. */
export function exitCodeOf(e: unknown): number {
  const code = (e as { exitCode?: unknown }).exitCode;
  return typeof code === 'number' ? code : 1;
}

/** Run the command line; exits with 0, 1 on an error, or 130 / 143 / 129 when Ctrl-C, SIGTERM or SIGHUP stopped a run (after its checkpoint). */
export async function main(argv: string[]): Promise<void> {
  if (argv[2] !== 'train') {
    const cli = await import('./cli.js');
    return cli.main(argv);
  }
  let code = 0;
  try {
    const prog = new Command('smkd').description('SMKD few-shot ViT training on WebGPU (Dawn, headless)').showHelpAfterError();
    prog.addCommand(trainCommand().copyInheritedSettings(prog));
    await prog.parseAsync(argv);
  } catch (e) {
    console.error(`smkd: ${(e as Error).message}`);
    code = exitCodeOf(e);
  }
  // No exit while Dawn still compiles pipelines on its threads; a trainer refused at its lock never loaded the engine.
  if (engineLoaded) await (await import('../engine/index.js')).releaseGpu();
  process.exit(code);
}
