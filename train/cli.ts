// The `smkd` command line: train, eval, classify, embed, demo, plot, show, info, each command in its own file
// (train/commands/, train/show/command.ts); this one assembles them and runs the program.
import { Command } from 'commander';
import { releaseGpu } from '../engine/index.js';
import { classifyCommand } from './commands/classify.js';
import { demoCommand } from './commands/demo.js';
import { embedCommand } from './commands/embed.js';
import { evalCommand } from './commands/eval.js';
import { infoCommand } from './commands/info.js';
import { plotCommand } from './commands/plot.js';
import { trainCommand } from './commands/train.js';
import { Interrupted } from './run-training.js';
import { showCommand } from './show/command.js';

export function program(): Command {
  const prog = new Command('smkd').description('SMKD few-shot ViT training on WebGPU (Dawn, headless)').showHelpAfterError();
  // Each command takes the program's settings (help after an error) as `prog.command()` would give them.
  for (const c of [trainCommand(), evalCommand(), classifyCommand(), embedCommand(), demoCommand(), plotCommand(), showCommand(), infoCommand()])
    prog.addCommand(c.copyInheritedSettings(prog));
  return prog;
}

/** Run the command line; exits with 0, 1 on an error, or 130 / 143 / 129 when Ctrl-C, SIGTERM or SIGHUP stopped a run (after its checkpoint). */
export async function main(argv: string[]): Promise<void> {
  let code = 0;
  try {
    await program().parseAsync(argv);
  } catch (e) {
    console.error(`smkd: ${(e as Error).message}`);
    code = e instanceof Interrupted ? e.exitCode : 1;
  }
  // No exit while Dawn still compiles pipelines on its threads.
  await releaseGpu();
  process.exit(code);
}
