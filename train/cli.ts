// The `smkd` command line: train, eval, embed, demo, plot, show, info.
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeGpu, getGpu, init } from '../engine/index.js';
import { releaseGpu } from '../engine/device.js';
import { PRESETS, resolveConfig, type DeepPartial, type PresetName, type TrainConfig } from './config.js';
import { loadBackbone, type LoadedBackbone, type Network } from './backbone-file.js';
import { NORMALIZATION, polarityWarning, type Normalization } from './data/index.js';
import { embedImages, listImages, readFileList, writeEmbeddings } from './embed.js';
import { evaluateBackbone, formatReport } from './evaluate.js';
import { FEATURE_KINDS, type FeatureKind } from './features.js';
import { FEW_SHOT_CLASSIFIERS, type FewShotClassifier } from './fewshot.js';
import { openSplits } from './sources.js';
import { runDemo } from './demo.js';
import { parseMetrics, runCurvesSvg } from './plot.js';
import { showCommand } from './show/command.js';
import { evalReport, Interrupted, runTraining } from './run-training.js';

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`'${v}' is not an integer`);
  return n;
};
const num = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`'${v}' is not a number`);
  return n;
};
const list = (v: string): number[] => v.split(',').map(int);

interface CommonOpts {
  preset: PresetName;
  config?: string;
  data?: string;
  dataKind?: TrainConfig['data']['kind'];
  seed?: number;
  out?: string;
  workers?: number;
}

interface TrainOpts extends CommonOpts {
  phase: string;
  init?: string;
  epochs?: number;
  itersPerEpoch?: number;
  batchSize?: number;
  lr?: number;
  evalEvery?: number;
  objective?: TrainConfig['objective'];
  supervisedCe?: number;
  allowConfigChange?: boolean;
}

/** Command-line flags as a partial config (only what was given). */
function overrides(o: TrainOpts | CommonOpts): DeepPartial<TrainConfig> {
  const t = o as TrainOpts;
  const data: DeepPartial<TrainConfig['data']> = {};
  if (o.data) {
    data.path = o.data;
    data.kind = o.dataKind ?? (/omniglot/i.test(o.data) ? 'omniglot' : 'folder');
  } else if (o.dataKind) data.kind = o.dataKind;
  if (data.kind === 'omniglot') data.invert = true;
  const out: DeepPartial<TrainConfig> = { data };
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.out) out.out = o.out;
  if (o.workers !== undefined) out.workers = o.workers;
  if (t.init) out.init = t.init;
  if (t.objective) out.objective = t.objective;
  const schedule: DeepPartial<TrainConfig['schedule']> = {};
  if (t.epochs !== undefined) schedule.epochs = t.epochs;
  if (t.itersPerEpoch !== undefined) schedule.itersPerEpoch = t.itersPerEpoch;
  if (t.lr !== undefined) schedule.lr = t.lr;
  out.schedule = schedule;
  if (t.batchSize !== undefined) out.batch = { size: t.batchSize };
  if (t.evalEvery !== undefined) out.eval = { everyEpochs: t.evalEvery };
  if (t.supervisedCe !== undefined) out.loss = { supervisedCe: t.supervisedCe };
  return out;
}

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
}

interface EmbedCliOpts {
  list?: string;
  output: string;
  features?: FeatureKind;
  imageSize?: number;
  normalize?: string;
  resize?: number;
  invert?: boolean;
  batchSize: number;
  numHeads?: number;
  network: Network;
}

/** A comma-separated list of names from `allowed`. */
function listOf<T extends string>(allowed: readonly T[]): (v: string) => T[] {
  return (v) => {
    const items = v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
    const bad = items.filter((x) => !allowed.includes(x as T));
    if (items.length === 0 || bad.length > 0) throw new InvalidArgumentError(`'${bad.join(',') || v}' is not in ${allowed.join(', ')}`);
    return items as T[];
  };
}

/** A class split: a class-list file when one exists at that path, else comma-separated top-level folders. */
function splitArg(v: string): string | string[] {
  return existsSync(v) ? v : v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function queriesArg(v: string): number | 'all' {
  if (v === 'all') return 'all';
  const n = int(v);
  if (n < 1) throw new InvalidArgumentError(`'${v}' is not a positive integer or 'all'`);
  return n;
}

/** `imagenet`, `cifar`, `run` (the run's training-split statistics, as its training used) or 'm,m,m/s,s,s'. */
async function normalizationArg(v: string, run: TrainConfig | undefined): Promise<Normalization> {
  if (v === 'imagenet' || v === 'cifar') return NORMALIZATION[v];
  if (v === 'run') {
    if (!run) throw new Error("--normalize run: the checkpoint is not inside a run directory with a config.json");
    return run.data.normalize ?? (await openSplits(run.data, run.seed)).normalize;
  }
  const parts = v.split('/').map((p) => p.split(',').map(Number));
  if (parts.length !== 2 || parts.some((p) => p.length !== 3 || p.some((x) => !Number.isFinite(x))) || parts[1].some((x) => x <= 0)) {
    throw new Error(`--normalize '${v}': expected imagenet, cifar, run, or three means and three positive stds as 'm,m,m/s,s,s'`);
  }
  return { mean: parts[0] as [number, number, number], std: parts[1] as [number, number, number] };
}

function describeBackbone(b: LoadedBackbone): string {
  const c = b.config;
  const ignored = b.ignored.length ? `; ignored ${b.ignored.length} other tensor(s) (${b.ignored.slice(0, 3).join(', ')}${b.ignored.length > 3 ? ', ...' : ''})` : '';
  return `${b.file}: ViT ${c.embedDim}-d, depth ${c.depth}, ${c.numHeads} heads (${b.headsFrom}), patch ${c.patchSize}, ${c.imgSize} px${ignored}`;
}

/** A progress bar on stderr while images go through the backbone (only on a terminal). */
function extractionBar(): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({ format: 'features {bar} {value}/{total} images | ETA {eta_formatted}', hideCursor: true, stream: process.stderr });
  let started = false;
  return {
    update: (done, total) => {
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}

function commonOptions(c: Command): Command {
  return c
    .addOption(new Option('--preset <name>', 'omniglot: the small-scale recipe on the packed Omniglot subset; tiny | small: the presets faithful to the reference code, docs/algorithm.md §10.2 (synthetic data unless --data)').choices(PRESETS).default('omniglot'))
    .option('--config <file>', 'JSON config file (validated; unknown keys are errors)')
    .option('--data <path>', "image folder, Omniglot folder or cifar-100-binary folder (default: the preset's: packed Omniglot, or synthetic glyphs for tiny/small)")
    .option('--data-kind <kind>', 'synthetic | folder | omniglot | cifar-fs | fc100')
    .option('--seed <n>', 'random seed', int)
    .option('--out <dir>', 'run directory')
    .option('--workers <n>', 'augmentation worker threads (0: main thread)', int);
}

export function program(): Command {
  const prog = new Command('smkd').description('SMKD few-shot ViT training on WebGPU (Dawn, headless)').showHelpAfterError();

  commonOptions(prog.command('train').description('train phase 1 (iBOT) or phase 2 (SMKD); resumes from the run directory'))
    .requiredOption('--phase <1|2>', 'training phase')
    .option('--init <path>', 'starting weights: a phase-1 run/checkpoint directory or a ViT safetensors file')
    .option('--epochs <n>', 'virtual epochs', int)
    .option('--iters-per-epoch <n>', 'iterations per virtual epoch', int)
    .option('--batch-size <n>', 'images per batch', int)
    .option('--lr <x>', 'peak learning rate', num)
    .option('--eval-every <n>', 'few-shot validation every n epochs (0: never)', int)
    .option('--supervised-ce <x>', "weight of the reference code's supervised cross-entropy term (loss.supervisedCe, docs/algorithm.md §5.7; 0: off)", num)
    .addOption(new Option('--objective <name>', 'smkd: the phase\'s distillation losses; ce: supervised baseline (cross-entropy of a linear classifier on [cls])').choices(['smkd', 'ce']))
    .option('--allow-config-change', "resume a run directory with settings that differ from its config.json (recorded in its config-changes.jsonl; refused otherwise)")
    .action(async (o: TrainOpts) => {
      if (o.phase !== '1' && o.phase !== '2') throw new InvalidArgumentError(`--phase must be 1 or 2, got '${o.phase}'`);
      const cfg = await resolveConfig(o.preset, Number(o.phase) as 1 | 2, o.config, overrides(o));
      const r = await runTraining(cfg, `phase ${cfg.phase}`, { allowConfigChange: o.allowConfigChange });
      if (r.stopped) {
        r.models.dispose();
        throw new Interrupted(r.lastCheckpoint ? `interrupted; ${r.lastCheckpoint} holds the run: the same command resumes it` : 'interrupted before the first step');
      }
      await evalReport(r.models, cfg, `phase ${cfg.phase} teacher`, r.splits);
      r.models.dispose();
    });

  commonOptions(prog.command('eval').description('few-shot evaluation of a checkpoint on held-out classes: seeded N-way K-shot episodes, mean accuracy and 95% CI'))
    .argument('<checkpoint>', 'run directory (its latest checkpoint), checkpoint directory, or ViT .safetensors (ours, DINO/iBOT/SMKD, timm)')
    .option('--split <name>', 'test | val', 'test')
    .option('--features <list>', `feature kinds: ${FEATURE_KINDS.join(', ')} (concat = [cls] + attention-pooled patch tokens; patches = every patch token, flattened; default: the run's eval.features)`, listOf(FEATURE_KINDS))
    .option('--classifier <list>', `classifiers: ${FEW_SHOT_CLASSIFIERS.join(', ')}`, listOf(FEW_SHOT_CLASSIFIERS), ['prototype'])
    .option('--ways <n>', 'N-way', int, 5)
    .option('--shots <list>', 'K-shot values', list, [1, 5])
    .option('--queries <n|all>', "queries per class ('all': every other image of the class)", queriesArg, 15)
    .option('--episodes <n>', 'episodes per setting', int, 600)
    .option('--train-split <split>', 'folder data: the training classes (for the normalisation statistics): a class-list file, or top-level folders a,b,c', splitArg)
    .option('--val-split <split>', 'folder data: the validation classes, as --train-split', splitArg)
    .option('--test-split <split>', 'folder data: the held-out classes, as --train-split', splitArg)
    .option('--max-per-class <n>', "at most n images per class (0: all; default: the config's eval.maxPerClass)", int)
    .option('--image-size <px>', "crop side of the evaluation transform (default: the model's image size)", int)
    .option('--batch-size <n>', 'images per GPU batch of the feature extraction', int, 64)
    .option('--num-heads <n>', 'attention heads, when neither the run config nor the file records them', int)
    .addOption(new Option('--network <name>', 'which network of a training checkpoint').choices(['teacher', 'student']).default('teacher'))
    .option('--json <file>', "also write the report as JSON ('-': print it on stdout, the table on stderr)")
    .action(async (ckpt: string, o: EvalCliOpts) => {
      const log = o.json === '-' ? (m: string) => console.error(m) : (m: string) => console.log(m);
      await init();
      const loaded = await loadBackbone(ckpt, { network: o.network, numHeads: o.numHeads });
      try {
        // Only the data flags: --batch-size here is the extraction batch, not the training batch.
        const flags = overrides({ preset: o.preset, data: o.data, dataKind: o.dataKind, seed: o.seed });
        flags.data = { ...flags.data, ...(o.trainSplit && { trainSplit: o.trainSplit }), ...(o.valSplit && { valSplit: o.valSplit }), ...(o.testSplit && { testSplit: o.testSplit }) };
        // A file without its run: the preprocessing its metadata records (our checkpoints) fills what the flags leave open.
        const pre = loaded.runConfig ? undefined : loaded.preprocessing;
        if (pre) {
          flags.data = { ...flags.data, normalize: { mean: [...pre.normalize.mean] as [number, number, number], std: [...pre.normalize.std] as [number, number, number] }, ...(o.data ? {} : { imageSize: pre.imageSize }) };
          flags.eval = { resizeRatio: pre.resizeRatio, features: pre.features };
        }
        const cfg = await resolveConfig(o.preset, 1, o.config ?? loaded.runConfig, flags);
        const size = o.imageSize ?? loaded.config.imgSize;
        // Decode at the evaluation resize when the dataset's stored size is below it (a 224-px model).
        const data = size > cfg.data.imageSize ? { ...cfg.data, imageSize: Math.round((size * 256) / 224) } : cfg.data;
        log(describeBackbone(loaded));
        const splits = await openSplits(data, cfg.seed);
        const ds = splits[o.split];
        const sample = await Promise.all(Array.from({ length: Math.min(32, ds.size) }, (_, k) => ds.load(Math.floor((k * ds.size) / Math.min(32, ds.size)))));
        const polarity = polarityWarning(sample, splits.normalize, `eval: ${ds.name}`, { lighter: '--data-kind omniglot inverts images', darker: '--data-kind folder does not invert them' });
        if (polarity) console.warn(polarity);
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
          ...rep,
        };
        if (o.json === '-') process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        else if (o.json) await writeFile(o.json, JSON.stringify(json, null, 2));
      } finally {
        loaded.backbone.dispose();
      }
    });

  prog
    .command('embed')
    .description('features of images (every image under folders, or files) from a checkpoint, into a safetensors file with the paths in its metadata')
    .argument('<checkpoint>', 'run directory, checkpoint directory, or ViT .safetensors')
    .argument('[inputs...]', 'image folders (every image below, at any depth) or image files')
    .option('--list <file>', 'a text file of image paths, one per line (relative to the current folder)')
    .option('-o, --output <file>', 'the safetensors file to write', 'embeddings.safetensors')
    .addOption(new Option('--features <kind>', "feature kind (concat = [cls] + attention-pooled patch tokens; default: the run's eval.features, else concat)").choices(FEATURE_KINDS))
    .option('--image-size <px>', "crop side of the evaluation transform (default: the model's image size)", int)
    .option('--normalize <stats>', "imagenet | cifar | run (the statistics of the run's training split) | 'm,m,m/s,s,s' (default: run when the checkpoint is in a run, else imagenet)")
    .option('--resize <px>', "decode each image with its shorter side at px first (default: the run's data.imageSize, else none)", int)
    .option('--invert', 'invert the images (bright strokes on dark, as Omniglot runs; default: as the run)')
    .option('--no-invert', 'do not invert the images')
    .option('--batch-size <n>', 'images per GPU batch', int, 64)
    .option('--num-heads <n>', 'attention heads, when neither the run config nor the file records them', int)
    .addOption(new Option('--network <name>', 'which network of a training checkpoint').choices(['teacher', 'student']).default('teacher'))
    .action(async (ckpt: string, inputs: string[], o: EmbedCliOpts) => {
      // Fail before any work when the output cannot be written.
      const outDir = path.dirname(path.resolve(o.output));
      if (!existsSync(outDir)) throw new Error(`embed: -o ${o.output}: the folder ${outDir} does not exist`);
      const files = await listImages([...inputs, ...(o.list ? await readFileList(o.list) : [])]);
      if (files.length === 0) throw new Error('embed: no images given (folders, files, or --list FILE)');
      await init();
      const loaded = await loadBackbone(ckpt, { network: o.network, numHeads: o.numHeads });
      try {
        const run = loaded.runConfig ? await resolveConfig('tiny', 1, loaded.runConfig, {}) : undefined;
        const pre = loaded.preprocessing;
        const normalize = o.normalize || run || !pre ? await normalizationArg(o.normalize ?? (run ? 'run' : 'imagenet'), run) : pre.normalize;
        const size = o.imageSize ?? loaded.config.imgSize;
        console.log(describeBackbone(loaded));
        const bar = extractionBar();
        const e = await embedImages(loaded.backbone, files, {
          size,
          normalize,
          kind: o.features ?? run?.eval.features ?? pre?.features ?? 'concat',
          decode: { resize: o.resize ?? run?.data.imageSize ?? pre?.imageSize, invert: o.invert ?? run?.data.invert ?? pre?.invert ?? false },
          resizeRatio: run?.eval.resizeRatio ?? pre?.resizeRatio,
          batchSize: o.batchSize,
          onProgress: bar.update,
          onWarning: (m) => {
            bar.stop();
            console.warn(m);
          },
        });
        bar.stop();
        await writeEmbeddings(o.output, e, {
          checkpoint: loaded.file,
          network: o.network,
          model: JSON.stringify(loaded.config),
          image_size: String(size),
          normalize: JSON.stringify(normalize),
        });
        console.log(`${o.output}: ${e.paths.length} x ${e.dim} ${e.kind} features${e.skipped.length ? `, ${e.skipped.length} unreadable image(s) skipped` : ''}`);
      } finally {
        loaded.backbone.dispose();
      }
    });

  commonOptions(prog.command('demo').description('phase 1, then phase 2, then few-shot evaluation of random init, raw pixels and both phases on the test alphabets of the packed Omniglot subset (omniglot preset)')).action(async (o: CommonOpts) => {
    const base = o.out ?? 'runs/demo';
    await mkdir(base, { recursive: true });
    const p1 = await resolveConfig(o.preset, 1, o.config, { ...overrides(o), out: path.join(base, 'phase1') });
    const p2 = await resolveConfig(o.preset, 2, o.config, { ...overrides(o), out: path.join(base, 'phase2'), init: path.join(base, 'phase1') });
    await init();
    if (!(await runDemo(p1, p2, base))) throw new Interrupted(`interrupted; the same command resumes the demo in ${base}`);
  });

  prog
    .command('plot')
    .description('training curves of run directories, overlaid: loss and its terms, learning rate, teacher temperature, crops per second, validation accuracy (SVG)')
    .argument('<runs...>', 'run directories (each with a metrics.jsonl)')
    .option('-o, --output <file>', 'the SVG file to write', 'curves.svg')
    .action(async (runs: string[], o: { output: string }) => {
      const outDir = path.dirname(path.resolve(o.output));
      if (!existsSync(outDir)) throw new Error(`plot: -o ${o.output}: the folder ${outDir} does not exist`);
      const metrics = await Promise.all(
        runs.map(async (dir) => {
          const text = await readFile(path.join(dir, 'metrics.jsonl'), 'utf8').catch(() => {
            throw new Error(`plot: ${dir} has no metrics.jsonl (not a run directory)`);
          });
          return parseMetrics(dir, text);
        }),
      );
      await writeFile(o.output, await runCurvesSvg(metrics, runs.length === 1 ? runs[0] : `${runs.length} runs`));
      console.log(`${o.output}: ${metrics.map((m) => `${m.name} (${m.steps.length} steps, ${m.validation.length} validations)`).join(', ')}`);
    });

  prog.addCommand(showCommand());

  prog
    .command('info')
    .description('the WebGPU adapter, its features and limits')
    .action(async () => {
      console.log(describeGpu(await getGpu()));
    });
  return prog;
}

/** Run the command line; exits with 0, 1 on an error, or 130 when Ctrl-C stopped a run (after its checkpoint). */
export async function main(argv: string[]): Promise<void> {
  let code = 0;
  try {
    await program().parseAsync(argv);
  } catch (e) {
    console.error(`smkd: ${(e as Error).message}`);
    code = e instanceof Interrupted ? 130 : 1;
  }
  // No exit while Dawn still compiles pipelines on its threads.
  await releaseGpu();
  process.exit(code);
}
