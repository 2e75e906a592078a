// The Omniglot study of issue #6: the supervised cross-entropy baseline, phase 1 only (iBOT) and
// phase 1 + phase 2 (SMKD), each trained for the same number of steps on the base alphabets, and a
// random-init backbone, evaluated on the novel alphabets (5-way 1/5-shot, 20-way 1-shot, prototype
// classifier, 95 % intervals). Writes the runs, results.json, the training curves (SVG, vega-lite)
// and docs/results-omniglot.md.
//
//   npx tsx scripts/omniglot-study.ts --data <omniglot/background> [--iters 300] [--phase2-iters 100]
import { Command } from 'commander';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { adapterName, getGpu, init } from '../engine/index.js';
import { resolveConfig, type DeepPartial, type TrainConfig } from '../train/config.js';
import { episodesReport, type EvalRow } from '../train/evaluate.js';
import { capPerClass, extractFeatures } from '../train/features.js';
import { openSplits } from '../train/sources.js';
import { modelsFor, train } from '../train/trainer.js';
import type { StudentTeacher } from '../model/smkd.js';

const opts = new Command('omniglot-study')
  .requiredOption('--data <path>', 'the Omniglot background folder (alphabet/character/image.png)')
  .option('--iters <n>', 'training steps of every method', (v) => Number(v), 300)
  .option('--phase2-iters <n>', 'of which phase 2 (SMKD) takes', (v) => Number(v), 100)
  .option('--episodes <n>', 'episodes per evaluation setting', (v) => Number(v), 600)
  .option('--out <dir>', 'folder of the runs', 'runs/omniglot-study')
  .option('--doc <file>', 'the report', 'docs/results-omniglot.md')
  .option('--config <file>', 'a JSON config merged over the tiny preset for every run')
  .option('--seed <n>', 'seed of every run', (v) => Number(v), 0)
  .option('--fresh', 'delete earlier runs of the study first')
  .option('--report-only', "rewrite the chart and the report from the runs' results.json and metrics, without training")
  .parse()
  .opts<{ data: string; iters: number; phase2Iters: number; episodes: number; out: string; doc: string; config?: string; seed: number; fresh?: boolean; reportOnly?: boolean }>();

const ITERS_PER_EPOCH = 10;
if (opts.iters % ITERS_PER_EPOCH || opts.phase2Iters % ITERS_PER_EPOCH || opts.phase2Iters >= opts.iters) {
  throw new Error(`--iters ${opts.iters} and --phase2-iters ${opts.phase2Iters} must be multiples of ${ITERS_PER_EPOCH}, phase 2 shorter than the whole`);
}
if (opts.fresh) await rm(opts.out, { recursive: true, force: true });
await init();

async function config(phase: 1 | 2, objective: 'smkd' | 'ce', iters: number, out: string, initFrom?: string): Promise<TrainConfig> {
  const over: DeepPartial<TrainConfig> = {
    objective,
    seed: opts.seed,
    out: path.join(opts.out, out),
    data: { kind: 'omniglot', path: opts.data, invert: true },
    schedule: { epochs: iters / ITERS_PER_EPOCH, itersPerEpoch: ITERS_PER_EPOCH },
    ...(initFrom ? { init: path.join(opts.out, initFrom) } : {}),
  };
  return resolveConfig('tiny', phase, opts.config, over);
}

interface Run {
  name: string;
  label: string;
  configs: TrainConfig[];
}

const p1 = opts.iters - opts.phase2Iters;
const runs: Run[] = [
  { name: 'ce', label: '(a) cross-entropy baseline', configs: [await config(1, 'ce', opts.iters, 'ce')] },
  { name: 'ibot', label: '(b) phase 1 only (iBOT)', configs: [await config(1, 'smkd', opts.iters, 'ibot')] },
  { name: 'smkd', label: '(c) phase 1 + phase 2 (SMKD)', configs: [await config(1, 'smkd', p1, 'smkd-phase1'), await config(2, 'smkd', opts.phase2Iters, 'smkd-phase2', 'smkd-phase1')] },
];

const resultsFile = path.join(opts.out, 'results.json');
const previous = opts.reportOnly ? (JSON.parse(await readFile(resultsFile, 'utf8')) as { results: Result[]; totalSeconds: number }) : undefined;
const splits = previous ? undefined : await openSplits(runs[0].configs[0].data, opts.seed);
const evalSettings = [
  { ways: 5, shots: [1, 5] },
  { ways: 20, shots: [1] },
];

async function evaluate(models: StudentTeacher, cfg: TrainConfig): Promise<EvalRow[]> {
  if (!splits) throw new Error('no data opened');
  const feats = await extractFeatures(models.teacher.backbone, splits.test, { size: cfg.crops.globalSize, normalize: splits.normalize, indices: capPerClass(splits.test, 20) });
  return evalSettings.flatMap((s) => episodesReport(feats, { ways: s.ways, shots: s.shots, queries: 15, episodes: opts.episodes, seed: opts.seed }).rows);
}

interface Result {
  name: string;
  label: string;
  rows: EvalRow[];
  seconds: number;
  commands: string[];
}

function command(cfg: TrainConfig): string {
  const parts = ['npx smkd train', `--phase ${cfg.phase}`, `--data ${opts.data}`, '--data-kind omniglot', `--epochs ${cfg.schedule.epochs}`, `--out ${cfg.out}`];
  if (cfg.objective === 'ce') parts.push('--objective ce');
  if (cfg.init) parts.push(`--init ${cfg.init}`);
  if (opts.config) parts.push(`--config ${opts.config}`);
  if (opts.seed) parts.push(`--seed ${opts.seed}`);
  return parts.join(' ');
}

const results: Result[] = previous?.results ?? [];
const t0 = performance.now();
if (!previous) {
  const cfg = runs[0].configs[0];
  const models = modelsFor({ ...cfg, objective: 'smkd' });
  const r0 = performance.now();
  results.push({ name: 'random', label: 'random init', rows: await evaluate(models, cfg), seconds: (performance.now() - r0) / 1000, commands: [] });
  models.dispose();
  console.log('random init:', results[0].rows.map((r) => `${r.ways}w${r.shots}s ${r.mean.toFixed(2)}±${r.ci95.toFixed(2)}`).join('  '));
}
for (const run of previous ? [] : runs) {
  const r0 = performance.now();
  let models: StudentTeacher | undefined;
  for (const cfg of run.configs) {
    models?.dispose();
    const r = await train(cfg, {
      log: (m) => console.log(m),
      onStep: (m) => {
        if ((m.iteration + 1) % 50 === 0) console.log(`${run.name} phase ${cfg.phase} it ${m.iteration + 1}: loss ${m.loss.toFixed(4)} ${JSON.stringify(m.terms)} ${m.imagesPerSecond.toFixed(0)} img/s`);
      },
    });
    models = r.models;
  }
  const rows = await evaluate(models!, run.configs[0]);
  models!.dispose();
  results.push({ name: run.name, label: run.label, rows, seconds: (performance.now() - r0) / 1000, commands: run.configs.map(command) });
  console.log(`${run.label}:`, rows.map((r) => `${r.ways}w${r.shots}s ${r.mean.toFixed(2)}±${r.ci95.toFixed(2)}`).join('  '));
}
const total = previous?.totalSeconds ?? (performance.now() - t0) / 1000;

// Training curves: the total loss of every run against its step (phase 2 of SMKD continues phase 1's axis).
interface Point { run: string; step: number; loss: number }
const points: Point[] = [];
for (const run of runs) {
  let offset = 0;
  for (const cfg of run.configs) {
    const lines = (await readFile(path.join(cfg.out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { iteration?: number; loss?: number });
    for (const l of lines) if (l.loss !== undefined && l.iteration !== undefined) points.push({ run: `${run.label}${run.configs.length > 1 ? ` phase ${cfg.phase}` : ''}`, step: offset + l.iteration + 1, loss: l.loss });
    offset += cfg.schedule.epochs * cfg.schedule.itersPerEpoch;
  }
}
const spec: vegaLite.TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  width: 640,
  height: 320,
  background: 'white',
  title: 'Omniglot: training loss per step (each method has its own loss)',
  data: { values: points },
  transform: [{ window: [{ op: 'mean', field: 'loss', as: 'smoothed' }], frame: [-4, 4], groupby: ['run'], sort: [{ field: 'step' }] }],
  mark: { type: 'line' },
  encoding: {
    x: { field: 'step', type: 'quantitative', title: 'training step' },
    y: { field: 'smoothed', type: 'quantitative', title: 'loss (9-step moving mean)', scale: { zero: false } },
    strokeDash: { field: 'run', type: 'nominal', legend: null },
    color: { field: 'run', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 400 } },
  },
};
const svg = await new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' }).toSVG();
const docDir = path.dirname(opts.doc);
await mkdir(docDir, { recursive: true });
const svgFile = path.join(docDir, 'results-omniglot-curves.svg');
await writeFile(svgFile, svg);
if (!previous) await writeFile(resultsFile, JSON.stringify({ adapter: adapterName((await getGpu()).info), iters: opts.iters, phase2Iters: opts.phase2Iters, episodes: opts.episodes, totalSeconds: total, results }, null, 2));

const head = ['Backbone', ...results[0].rows.map((r) => `${r.ways}-way ${r.shots}-shot`), 'Wall time'];
const table = [
  `| ${head.join(' | ')} |`,
  `|${head.map(() => '---').join('|')}|`,
  ...results.map((r) => `| ${r.label} | ${r.rows.map((x) => `${x.mean.toFixed(2)} ± ${x.ci95.toFixed(2)}`).join(' | ')} | ${r.seconds.toFixed(0)} s |`),
].join('\n');
const md = `<!-- generated by scripts/omniglot-study.ts; the findings section below the marker is written by hand -->
# Omniglot study: does SMKD beat its baselines?

Data: \`omniglot/background\` (8 alphabets of the shared subset), split by alphabet as \`--data-kind omniglot\`
does (the first 5 alphabets in name order train, the other 3 are the novel classes), inverted, 32 px.
Every method trains for **${opts.iters} steps** of the tiny preset (batch 16; SMKD: ${p1} steps of phase 1,
then ${opts.phase2Iters} of phase 2 with the P x K sampler), seed ${opts.seed}; evaluation: teacher backbone,
[cls] + attention-weighted patch features, prototype classifier, ${opts.episodes} episodes per setting,
15 queries per class, 95 % intervals. Adapter: ${adapterName((await getGpu()).info)}. Total wall time ${(total / 60).toFixed(1)} min.

${table}

Reproduce (the data path is an argument):

\`\`\`sh
npx tsx scripts/omniglot-study.ts --data <omniglot/background> --iters ${opts.iters} --phase2-iters ${opts.phase2Iters} --episodes ${opts.episodes}${opts.config ? ` --config ${opts.config}` : ''}
\`\`\`

which runs, per method:

\`\`\`sh
${results.flatMap((r) => r.commands).join('\n')}
\`\`\`

![training curves](${path.basename(svgFile)})

<!-- findings -->
`;
let findings = '';
try {
  const old = await readFile(opts.doc, 'utf8');
  const at = old.indexOf('<!-- findings -->');
  if (at >= 0) findings = old.slice(at + '<!-- findings -->'.length).replace(/^\n/, '');
} catch {
  // first run: no findings yet
}
await writeFile(opts.doc, md + findings);
console.log(`wrote ${opts.doc}, ${svgFile} and ${path.join(opts.out, 'results.json')} (${(total / 60).toFixed(1)} min)`);
process.exit(0);
