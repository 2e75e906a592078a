// The `smkd` command line: train, eval, classify, embed, demo, plot, show, info, each command in its own file
// (train/commands/, train/show/command.ts); this one assembles them and runs the program.
import type { Command } from 'commander';
import { classifyCommand } from './commands/classify.js';
import { demoCommand } from './commands/demo.js';
import { embedCommand } from './commands/embed.js';
import { evalCommand } from './commands/eval.js';
import { infoCommand } from './commands/info.js';
import { plotCommand } from './commands/plot.js';
import { trainCommand } from './commands/train.js';
import { runProgram, smkdProgram } from './run-program.js';
import { showCommand } from './show/command.js';

export function program(): Command {
  return smkdProgram([trainCommand(), evalCommand(), classifyCommand(), embedCommand(), demoCommand(), plotCommand(), showCommand(), infoCommand()]);
}

/** Run the command line; exits with 0, 1 on an error, or 130 / 143 / 129 when Ctrl-C, SIGTERM or SIGHUP stopped a run (after its checkpoint). */
export async function main(argv: string[]): Promise<void> {
  await runProgram(program(), argv, () => true);
}
