// `smkd train`: phase 1 (iBOT) or phase 2 (SMKD), resuming from the run directory, then the teacher's evaluation.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolveConfig } from '../config.js';
import { lockRun } from '../run-lock.js';
import { commonOptions, nonNegative, num, overrides, positive, type TrainOpts } from './options.js';

/** Whether this process went past the lock and loaded the engine (so its GPU must be released before exit). */
export let engineLoaded = false;

export function trainCommand(): Command {
  return commonOptions(new Command('train').description('train phase 1 (iBOT) or phase 2 (SMKD); resumes from the run directory'))
    .requiredOption('--phase <1|2>', 'training phase')
    .option('--init <path>', 'starting weights: a phase-1 run/checkpoint directory or a ViT safetensors file')
    .option('--epochs <n>', 'virtual epochs', positive)
    .option('--iters-per-epoch <n>', 'iterations per virtual epoch', positive)
    .option('--batch-size <n>', 'images per batch', positive)
    .option('--lr <x>', 'peak learning rate', num)
    .option('--eval-every <n>', 'few-shot validation every n epochs (0: never)', nonNegative)
    .option('--supervised-ce <x>', "weight of the reference code's supervised cross-entropy term (loss.supervisedCe, docs/algorithm.md §5.7; 0: off)", num)
    .option('--patch-size <px>', 'ViT patch side (model.patchSize; the omniglot preset: 14, a 2x2 grid of its 28-px images; 7: 4x4)', positive)
    .option('--rotated-classes', 'also train on every class turned by 90, 180 and 270 degrees, each turn a class of its own (data.rotatedClasses)')
    .option('--lambda2 <x>', "weight of phase 2's patch term (loss.lambda2, docs/algorithm.md §5.5)", num)
    .option('--no-masking', "the student's global crops are not masked (masking.ratios [0])")
    .addOption(
      new Option('--objective <name>', "smkd: the phase's distillation losses; ce: supervised baseline (cross-entropy of a linear classifier on [cls])").choices(['smkd', 'ce']),
    )
    .option('--allow-config-change', 'resume a run directory with settings that differ from its config.json (recorded in its config-changes.jsonl; refused otherwise)')
    .action(async (o: TrainOpts) => {
      if (o.phase !== '1' && o.phase !== '2') throw new InvalidArgumentError(`--phase must be 1 or 2, got '${o.phase}'`);
      const cfg = await resolveConfig(o.preset, Number(o.phase) as 1 | 2, o.config, overrides(o));
      // The run's lock before the engine and the trainer load (train/cli-main.ts loads only this command
      // for `smkd train`): a second trainer on the same --out is refused about 0.4 s after it starts.
      const lock = await lockRun(cfg.out);
      engineLoaded = true;
      const { evalReport, Interrupted, runTraining, STOP_SIGNALS } = await import('../run-training.js');
      const r = await runTraining(cfg, `phase ${cfg.phase}`, { allowConfigChange: o.allowConfigChange, lock });
      if (r.stopped) {
        r.models.dispose();
        const code = STOP_SIGNALS[r.signal ?? 'SIGINT'];
        throw new Interrupted(
          r.lastCheckpoint
            ? `interrupted (${r.signal ?? 'SIGINT'}); ${r.lastCheckpoint} holds the run: the same command resumes it`
            : `interrupted (${r.signal ?? 'SIGINT'}) before the first step`,
          code,
        );
      }
      if (r.splits.test.size > 0) await evalReport(r.models, cfg, `phase ${cfg.phase} teacher`, r.splits);
      else console.log(`phase ${cfg.phase}: no test classes (data.testSplit is empty), so no evaluation`);
      r.models.dispose();
    });
}
