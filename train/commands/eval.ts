// `smkd eval`: few-shot evaluation of a checkpoint on held-out classes.
import { checkOutputFile, writeOutputFile } from '../output-file.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import { init } from '../../engine/index.js';
import { loadBackbone, seenClassesWarning, type Network } from '../backbone-file.js';
import { resolveConfig } from '../config.js';
import { defaultModel } from '../default-model.js';
import { polarityWarning } from '../data/index.js';
import { evaluateBackbone, formatReport } from '../evaluate.js';
import { FEATURE_KINDS, type FeatureKind } from '../features.js';
import { FEW_SHOT_CLASSIFIERS, type FewShotClassifier } from '../fewshot.js';
import { openSplits } from '../sources.js';
import { describeBackbone, extractionBar } from './extraction.js';
import { commonOptions, int, nonNegative, overrides, positive, resolveShifts, SHIFT_TTA_HELP, shiftTta, type CommonOpts } from './options.js';

/** N-way needs two classes at least. */
const ways = (v: string): number => {
  const n = int(v);
  if (n < 2) throw new InvalidArgumentError(`'${v}' ways: an episode needs at least 2 classes`);
  return n;
};

const list = (v: string): number[] => v.split(',').map(positive);

interface EvalCliOpts extends CommonOpts {
  split: 'test' | 'val';
  features?: FeatureKind[];
  classifier: FewShotClassifier[];
  ways: number;
  shots: number[];
  queries: number | 'all';
  episodes: number;
  trainSplit?: string | string[];
  valSplit?: string | string[];
  testSplit?: string | string[];
  maxPerClass?: number;
  imageSize?: number;
  batchSize: number;
  numHeads?: number;
  network: Network;
  json?: string;
  shiftTta: number | 'auto';
}

/** A comma-separated list of names from `allowed`. */
function listOf<T extends string>(allowed: readonly T[]): (v: string) => T[] {
  return (v) => {
    const items = v
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0);
    const bad = items.filter((x) => !allowed.includes(x as T));
    if (items.length === 0 || bad.length > 0) throw new InvalidArgumentError(`'${bad.join(',') || v}' is not in ${allowed.join(', ')}`);
    return items as T[];
  };
}

/** A class split: a class-list file when one exists at that path, else comma-separated top-level folders. */
function splitArg(v: string): string | string[] {
  return existsSync(v)
    ? v
    : v
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0);
}

function queriesArg(v: string): number | 'all' {
  if (v === 'all') return 'all';
  const n = int(v);
  if (n < 1) throw new InvalidArgumentError(`'${v}' is not a positive integer or 'all'`);
  return n;
}

export function evalCommand(): Command {
  return commonOptions(new Command('eval').description('few-shot evaluation of a checkpoint on held-out classes: seeded N-way K-shot episodes, mean accuracy and 95% CI'))
    .argument('[checkpoint]', 'run directory (its latest checkpoint), checkpoint directory, or ViT .safetensors (ours, DINO/iBOT/SMKD, timm); default: the shipped model')
    .option('--split <name>', 'test | val', 'test')
    .option(
      '--features <list>',
      `feature kinds: ${FEATURE_KINDS.join(', ')} (concat = [cls] + attention-pooled patch tokens; patches = every patch token, flattened; default: the run's eval.features)`,
      listOf(FEATURE_KINDS),
    )
    .option('--classifier <list>', `classifiers: ${FEW_SHOT_CLASSIFIERS.join(', ')}`, listOf(FEW_SHOT_CLASSIFIERS), ['prototype'])
    .option('--ways <n>', 'N-way', ways, 5)
    .option('--shots <list>', 'K-shot values', list, [1, 5])
    .option('--queries <n|all>', "queries per class ('all': every other image of the class)", queriesArg, 15)
    .option('--episodes <n>', 'episodes per setting', positive, 600)
    .option('--train-split <split>', 'folder data: the training classes (for the normalisation statistics): a class-list file, or top-level folders a,b,c', splitArg)
    .option('--val-split <split>', 'folder data: the validation classes, as --train-split', splitArg)
    .option('--test-split <split>', 'folder data: the held-out classes, as --train-split', splitArg)
    .option('--max-per-class <n>', "at most n images per class (0: all; default: the config's eval.maxPerClass)", nonNegative)
    .option('--image-size <px>', "crop side of the evaluation transform (default: the model's image size)", positive)
    .option('--batch-size <n>', 'images per GPU batch of the feature extraction', positive, 64)
    .option('--shift-tta <px|auto>', SHIFT_TTA_HELP, shiftTta, 'auto')
    .option('--num-heads <n>', 'attention heads, when neither the run config nor the file records them', positive)
    .addOption(new Option('--network <name>', 'which network of a training checkpoint').choices(['teacher', 'student']).default('teacher'))
    .option('--json <file>', "also write the report as JSON ('-': print it on stdout, the table on stderr)")
    .action(async (ckptArg: string | undefined, o: EvalCliOpts) => {
      if (o.json && o.json !== '-') checkOutputFile('eval', '--json', o.json);
      const ckpt = ckptArg ?? defaultModel();
      const log = o.json === '-' ? (m: string) => console.error(m) : (m: string) => console.log(m);
      await init();
      const loaded = await loadBackbone(ckpt, { network: o.network, numHeads: o.numHeads });
      try {
        // Only the data flags: --batch-size here is the extraction batch, not the training batch.
        const flags = overrides({ preset: o.preset, data: o.data, dataKind: o.dataKind, seed: o.seed });
        flags.data = {
          ...flags.data,
          ...(o.trainSplit && { trainSplit: o.trainSplit }),
          ...(o.valSplit && { valSplit: o.valSplit }),
          ...(o.testSplit && { testSplit: o.testSplit }),
        };
        // A file without its run: the preprocessing its metadata records (our checkpoints) fills what the flags leave open.
        const pre = loaded.runConfig ? undefined : loaded.preprocessing;
        if (pre) {
          flags.data = {
            ...flags.data,
            normalize: { mean: [...pre.normalize.mean] as [number, number, number], std: [...pre.normalize.std] as [number, number, number] },
            ...(o.data ? {} : { imageSize: pre.imageSize }),
          };
          flags.eval = { resizeRatio: pre.resizeRatio, features: pre.features };
        }
        const cfg = await resolveConfig(o.preset, 1, o.config ?? loaded.runConfig, flags);
        const size = o.imageSize ?? loaded.config.imgSize;
        // Decode at the evaluation resize when the dataset's stored size is below it (a 224-px model).
        const data = size > cfg.data.imageSize ? { ...cfg.data, imageSize: Math.round((size * 256) / 224) } : cfg.data;
        const tta = resolveShifts(o.shiftTta, loaded.config);
        log(`${describeBackbone(loaded)}\n${tta.note}`);
        const splits = await openSplits(data, cfg.seed);
        const ds = splits[o.split];
        const sample = await Promise.all(Array.from({ length: Math.min(32, ds.size) }, (_, k) => ds.load(Math.floor((k * ds.size) / Math.min(32, ds.size)))));
        const polarity = polarityWarning(sample, splits.normalize, `eval: ${ds.name}`, {
          lighter: '--data-kind omniglot inverts images',
          darker: '--data-kind folder does not invert them',
        });
        if (polarity) console.warn(polarity);
        const seen = seenClassesWarning(loaded, ds.classes, `eval: ${ds.name}`);
        if (seen) console.warn(seen);
        const maxPerClass = (o.maxPerClass ?? cfg.eval.maxPerClass) || undefined;
        const bar = extractionBar();
        const rep = await evaluateBackbone(loaded.backbone, splits[o.split], {
          size,
          normalize: splits.normalize,
          features: o.features ?? [cfg.eval.features],
          classifiers: o.classifier,
          ways: o.ways,
          shots: o.shots,
          queries: o.queries,
          episodes: o.episodes,
          maxPerClass,
          resizeRatio: cfg.eval.resizeRatio,
          seed: cfg.seed,
          batchSize: o.batchSize,
          shifts: tta.shifts,
          onProgress: bar.update,
        });
        bar.stop();
        log(formatReport(`${loaded.file} (${o.split} split)`, rep));
        const json = {
          checkpoint: loaded.file,
          network: o.network,
          model: loaded.config,
          data: { kind: data.kind, path: data.path ?? null, split: o.split, cropSize: size, maxPerClass: maxPerClass ?? null, normalize: splits.normalize },
          seed: cfg.seed,
          shiftTta: tta.radius,
          ...rep,
        };
        if (o.json === '-') process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        else if (o.json) await writeOutputFile(o.json, JSON.stringify(json, null, 2));
      } finally {
        loaded.backbone.dispose();
      }
    });
}
