// Building and running the `smkd` program, shared by the whole command line (cli.ts) and the `smkd train`
// fast path (cli-main.ts). Light on purpose: the engine is imported only to release its GPU at the end.
import { Command } from 'commander';

/** The `smkd` program with `commands`, each taking its settings (help after an error) as `prog.command()` would give them. */
export function smkdProgram(commands: readonly Command[]): Command {
  const prog = new Command('smkd').description('SMKD few-shot ViT training on WebGPU (Dawn, headless)').showHelpAfterError();
  for (const c of commands) prog.addCommand(c.copyInheritedSettings(prog));
  return prog;
}

/** An error's exit code: Interrupted's (130 / 143 / 129 after a stop signal), else 1. */
export function exitCodeOf(e: unknown): number {
  const code = (e as { exitCode?: unknown }).exitCode;
  return typeof code === 'number' ? code : 1;
}

/**
 * Run `prog` on argv and exit: 0, 1 on an error, or 130 / 143 / 129 when Ctrl-C, SIGTERM or SIGHUP stopped
 * a run (after its checkpoint). `usedGpu()` says whether the engine was loaded (a trainer refused at its
 * lock never loads it), so that its GPU is released first: no exit while Dawn compiles on its threads.
 */
export async function runProgram(prog: Command, argv: string[], usedGpu: () => boolean): Promise<never> {
  let code = 0;
  try {
    await prog.parseAsync(argv);
  } catch (e) {
    console.error(`smkd: ${(e as Error).message}`);
    code = exitCodeOf(e);
  }
  if (usedGpu()) await (await import('../engine/index.js')).releaseGpu();
  process.exit(code);
}
