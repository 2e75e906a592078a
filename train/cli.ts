// The `smkd` command line: train, eval, demo, info.
import { Command, InvalidArgumentError } from 'commander';
import { SingleBar } from 'cli-progress';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeGpu, getGpu, init } from '../engine/index.js';
import { HEAD_CONFIGS, vitConfig } from '../model/configs.js';
import { loadModel } from '../model/checkpoint.js';
import { StudentTeacher } from '../model/smkd.js';
import { latestCheckpoint } from './checkpoint.js';
import { resolveConfig, type DeepPartial, type TrainConfig } from './config.js';
import { evaluateBackbone, formatReport, type EvalReport } from './evaluate.js';
import { openSplits, type DataSplits } from './sources.js';
import { train, type StepMetrics, type TrainResult } from './trainer.js';

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
  preset: 'tiny' | 'small';
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
  const schedule: DeepPartial<TrainConfig['schedule']> = {};
  if (t.epochs !== undefined) schedule.epochs = t.epochs;
  if (t.itersPerEpoch !== undefined) schedule.itersPerEpoch = t.itersPerEpoch;
  if (t.lr !== undefined) schedule.lr = t.lr;
  out.schedule = schedule;
  if (t.batchSize !== undefined) out.batch = { size: t.batchSize };
  if (t.evalEvery !== undefined) out.eval = { everyEpochs: t.evalEvery };
  return out;
}

function progress(label: string): { onStep: (m: StepMetrics) => void; onStart: (i: { startIteration: number; totalIterations: number }) => void; stop: () => void } {
  const tty = process.stdout.isTTY;
  const bar = new SingleBar({ format: `${label} {bar} {value}/{total} | loss {loss} | {ips} img/s | ETA {eta_formatted}`, hideCursor: true });
  let total = 0;
  return {
    onStart: ({ startIteration, totalIterations }) => {
      total = totalIterations;
      if (tty) bar.start(totalIterations, startIteration, { loss: '-', ips: '-' });
    },
    onStep: (m) => {
      const loss = m.loss.toFixed(4);
      if (tty) bar.update(m.iteration + 1, { loss, ips: m.imagesPerSecond.toFixed(1) });
      else if ((m.iteration + 1) % 10 === 0 || m.iteration + 1 === total) {
        const terms = Object.entries(m.terms).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
        console.log(`${label} it ${m.iteration + 1}/${total}  loss ${loss} (${terms})  lr ${m.lr.toExponential(2)}  ${m.imagesPerSecond.toFixed(1)} img/s`);
      }
    },
    stop: () => {
      if (tty) bar.stop();
    },
  };
}

/** First Ctrl-C: finish the step and checkpoint; second: exit at once (the last checkpoint is whole). */
function stopSignal(): () => boolean {
  let requested = false;
  process.on('SIGINT', () => {
    if (requested) process.exit(130);
    requested = true;
    console.log('\nstopping after this step (a checkpoint will be written); press Ctrl-C again to quit now');
  });
  return () => requested;
}

async function runTraining(cfg: TrainConfig, label: string): Promise<TrainResult> {
  const p = progress(label);
  const shouldStop = stopSignal();
  const t0 = performance.now();
  try {
    const r = await train(cfg, {
      onStart: p.onStart,
      onStep: p.onStep,
      shouldStop,
      validate: async (models, splits, epoch) => {
        const rep = await evaluateBackbone(models.teacher.backbone, splits.val, { size: cfg.crops.globalSize, normalize: splits.normalize, ways: cfg.eval.ways, shots: [cfg.eval.shots[0]], queries: cfg.eval.queries, episodes: cfg.eval.episodes, maxPerClass: cfg.eval.maxPerClass, seed: cfg.seed });
        console.log(`\n${formatReport(`validation after epoch ${epoch + 1}`, rep)}`);
        return rep.rows[0].mean;
      },
    });
    p.stop();
    console.log(`${label}: ${r.stopped ? 'stopped' : 'finished'} in ${((performance.now() - t0) / 1000).toFixed(0)} s; checkpoint ${r.lastCheckpoint}`);
    return r;
  } catch (e) {
    p.stop();
    throw e;
  }
}

/** Few-shot report of the teacher backbone on the held-out test classes of `splits`. */
async function evalReport(models: StudentTeacher, cfg: TrainConfig, title: string, splits: DataSplits): Promise<EvalReport> {
  const rep = await evaluateBackbone(models.teacher.backbone, splits.test, {
    size: cfg.crops.globalSize,
    normalize: splits.normalize,
    ways: cfg.eval.ways,
    shots: cfg.eval.shots,
    queries: cfg.eval.queries,
    episodes: cfg.eval.episodes,
    maxPerClass: cfg.eval.maxPerClass,
    seed: cfg.seed,
  });
  console.log(formatReport(title, rep));
  return rep;
}

function modelsOf(cfg: TrainConfig): StudentTeacher {
  const vit = vitConfig(cfg.preset, { imgSize: cfg.crops.globalSize, patchSize: cfg.model.patchSize, embedDim: cfg.model.embedDim, depth: cfg.model.depth, numHeads: cfg.model.numHeads });
  return new StudentTeacher({ vit, head: { ...HEAD_CONFIGS[cfg.preset], ...cfg.head }, seed: cfg.seed });
}

function commonOptions(c: Command): Command {
  return c
    .option('--preset <name>', 'tiny | small (spec 10.2)', 'tiny')
    .option('--config <file>', 'JSON config file (validated; unknown keys are errors)')
    .option('--data <path>', 'image folder, Omniglot folder or cifar-100-binary folder (default: built-in synthetic data)')
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
    .action(async (o: TrainOpts) => {
      if (o.phase !== '1' && o.phase !== '2') throw new InvalidArgumentError(`--phase must be 1 or 2, got '${o.phase}'`);
      const cfg = await resolveConfig(o.preset, Number(o.phase) as 1 | 2, o.config, overrides(o));
      const r = await runTraining(cfg, `phase ${cfg.phase}`);
      await evalReport(r.models, cfg, `phase ${cfg.phase} teacher`, r.splits);
      r.models.dispose();
    });

  commonOptions(prog.command('eval').description('few-shot evaluation of a checkpoint (run dir, checkpoint dir or safetensors) on the held-out classes'))
    .argument('<checkpoint>', 'run directory, checkpoint directory, or teacher/backbone .safetensors')
    .option('--ways <n>', 'N-way', int)
    .option('--shots <list>', 'K-shot values, e.g. 1,5', list)
    .option('--episodes <n>', 'episodes per setting', int)
    .option('--queries <n>', 'queries per class', int)
    .option('--classifier <list>', 'prototype,distLinear', (v: string) => v.split(',') as ('prototype' | 'distLinear')[])
    .option('--split <name>', 'test | val', 'test')
    .option('--json <file>', 'also write the report as JSON')
    .action(async (ckpt: string, o: CommonOpts & { ways?: number; shots?: number[]; episodes?: number; queries?: number; classifier?: ('prototype' | 'distLinear')[]; split: 'test' | 'val'; json?: string }) => {
      const cfg = await resolveConfig(o.preset, 1, o.config, overrides(o));
      await init();
      const models = modelsOf(cfg);
      const file = ckpt.endsWith('.safetensors') ? ckpt : path.join((await latestCheckpoint(ckpt)) ?? ckpt, 'teacher.safetensors');
      const { missing } = await loadModel(file, models.teacher, false);
      if (missing.some((k) => k.startsWith('backbone.'))) throw new Error(`${file}: the backbone is incomplete (missing ${missing.filter((k) => k.startsWith('backbone.')).join(', ')})`);
      const splits = await openSplits(cfg.data, cfg.seed);
      const rep = await evaluateBackbone(models.teacher.backbone, splits[o.split], {
        size: cfg.crops.globalSize,
        normalize: splits.normalize,
        ways: o.ways ?? cfg.eval.ways,
        shots: o.shots ?? cfg.eval.shots,
        queries: o.queries ?? cfg.eval.queries,
        episodes: o.episodes ?? cfg.eval.episodes,
        classifiers: o.classifier,
        maxPerClass: cfg.eval.maxPerClass,
        seed: cfg.seed,
      });
      console.log(formatReport(`${file}`, rep));
      if (o.json) await writeFile(o.json, JSON.stringify({ checkpoint: file, ...rep }, null, 2));
      models.dispose();
    });

  commonOptions(prog.command('demo').description('phase 1, then phase 2, then few-shot evaluation, on the built-in synthetic data (tiny preset)')).action(async (o: CommonOpts) => {
    const t0 = performance.now();
    const base = o.out ?? 'runs/demo';
    await mkdir(base, { recursive: true });
    const p1 = await resolveConfig(o.preset, 1, o.config, { ...overrides(o), out: path.join(base, 'phase1') });
    const p2 = await resolveConfig(o.preset, 2, o.config, { ...overrides(o), out: path.join(base, 'phase2'), init: path.join(base, 'phase1') });
    await init();
    const fresh = modelsOf(p1);
    const before = await evalReport(fresh, p1, 'random init', await openSplits(p1.data, p1.seed));
    fresh.dispose();
    const r1 = await runTraining(p1, 'phase 1');
    const after1 = await evalReport(r1.models, p1, 'after phase 1 (iBOT)', r1.splits);
    r1.models.dispose();
    if (r1.stopped) return;
    const r2 = await runTraining(p2, 'phase 2');
    const after2 = await evalReport(r2.models, p2, 'after phase 2 (SMKD)', r2.splits);
    r2.models.dispose();
    const rows = [
      ['random init', before],
      ['phase 1', after1],
      ['phase 2', after2],
    ] as const;
    console.log('\nsummary (5-way prototype accuracy on held-out classes, mean ± 95% CI):');
    for (const [name, rep] of rows) console.log(`  ${name.padEnd(12)} ${rep.rows.map((r) => `${r.shots}-shot ${r.mean.toFixed(2)}% ± ${r.ci95.toFixed(2)}`).join('   ')}`);
    console.log(`demo wall time ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    await writeFile(path.join(base, 'summary.json'), JSON.stringify({ before, after1, after2, seconds: (performance.now() - t0) / 1000 }, null, 2));
  });

  prog
    .command('info')
    .description('the WebGPU adapter, its features and limits')
    .action(async () => {
      console.log(describeGpu(await getGpu()));
    });
  return prog;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
    process.exit(0);
  } catch (e) {
    console.error(`smkd: ${(e as Error).message}`);
    process.exit(1);
  }
}
