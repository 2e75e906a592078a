// The Omniglot study (issue #13): four ways to train the same ViT on the train alphabets of the packed
// Omniglot subset, each for the same number of augmented crops, scored on the validation alphabet as
// they train (accuracy against crops seen) and on the test alphabets at the end, beside random init and
// raw pixels on the same episodes:
//   (a) cross-entropy only (--objective ce);
//   (b) phase 1 only: iBOT, no labels;
//   (c) phase 1 + phase 2: iBOT, then SMKD, as the method describes them (no cross-entropy term);
//   (d) the omniglot preset's final form, as `npm run demo` runs it (both phases with the reference code's CE term, docs/algorithm.md §5.7).
// Writes the runs, results.json, the curves (SVG) and the generated part of docs/results-omniglot.md.
//
//   npx tsx scripts/omniglot-study.ts [--crops 100000] [--phase2-share 0.7] [--episodes 600]
import { Command } from 'commander';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { adapterName, getGpu, init } from '../engine/index.js';
import { resolveConfig, type DeepPartial, type TrainConfig } from '../train/config.js';
import { formatRows, testRows, validationBaselines, validationCurve, type DemoRow } from '../train/demo.js';
import { lineChartSvg, type CurvePoint } from '../train/plot.js';
import { runTraining } from '../train/run-training.js';
import { openSplits } from '../train/sources.js';
import { modelsFor } from '../train/trainer.js';

const opts = new Command('omniglot-study')
  .option('--crops <n>', "augmented crops every method trains on (default: the demo's 38,400 + 64,000)", (v) => Number(v), 102400)
  .option('--phase2-share <x>', "the share of the crops that phase 2 takes in (c) and (d) (default: the demo's)", (v) => Number(v), 0.625)
  .option('--episodes <n>', 'episodes per test setting', (v) => Number(v), 600)
  .option('--val-points <n>', 'validation points per run', (v) => Number(v), 8)
  .option('--out <dir>', 'folder of the runs', 'runs/omniglot-study')
  .option('--doc <file>', 'the report', 'docs/results-omniglot.md')
  .option('--seed <n>', 'seed of every run', (v) => Number(v), 0)
  .option('--fresh', 'delete earlier runs of the study first')
  .option('--report-only', "rewrite the chart and the report from the runs' results.json, without training")
  .parse()
  .opts<{ crops: number; phase2Share: number; episodes: number; valPoints: number; out: string; doc: string; seed: number; fresh?: boolean; reportOnly?: boolean }>();

if (opts.fresh && !opts.reportOnly) await rm(opts.out, { recursive: true, force: true });
await init();

// Random init and raw pixels are scored on the same episodes as the arms.
const base = await resolveConfig('omniglot', 1, undefined, { seed: opts.seed, eval: { episodes: opts.episodes } });
const cropsPerIter = base.batch.size * (base.crops.global + base.crops.local);
const I = base.schedule.itersPerEpoch;
/** Whole virtual epochs for `crops` crops. */
const epochsFor = (crops: number): number => Math.max(1, Math.round(crops / cropsPerIter / I));

async function config(name: string, phase: 1 | 2, crops: number, over: DeepPartial<TrainConfig>, initFrom?: string): Promise<TrainConfig> {
  const epochs = epochsFor(crops);
  return resolveConfig('omniglot', phase, undefined, {
    ...over,
    seed: opts.seed,
    out: path.join(opts.out, name),
    schedule: { ...over.schedule, epochs },
    eval: { everyEpochs: Math.max(1, Math.round(epochs / opts.valPoints)), episodes: opts.episodes },
    ...(initFrom ? { init: path.join(opts.out, initFrom) } : {}),
  });
}

const noCe = { loss: { supervisedCe: 0 } };
const p2 = Math.round(opts.crops * opts.phase2Share);
const arms: { name: string; label: string; configs: TrainConfig[] }[] = [
  { name: 'ce', label: '(a) cross-entropy only', configs: [await config('ce', 1, opts.crops, { objective: 'ce' })] },
  { name: 'ibot', label: '(b) phase 1 only (iBOT)', configs: [await config('ibot', 1, opts.crops, noCe)] },
  {
    name: 'smkd',
    label: '(c) phase 1 + phase 2 (iBOT, then SMKD)',
    configs: [await config('smkd-phase1', 1, opts.crops - p2, noCe), await config('smkd-phase2', 2, p2, noCe, 'smkd-phase1')],
  },
  {
    name: 'recipe',
    label: '(d) the omniglot recipe (both phases + CE term)',
    configs: [await config('recipe-phase1', 1, opts.crops - p2, {}), await config('recipe-phase2', 2, p2, {}, 'recipe-phase1')],
  },
];

function command(cfg: TrainConfig): string {
  const parts = ['npx smkd train', `--phase ${cfg.phase}`, `--epochs ${cfg.schedule.epochs}`, `--eval-every ${cfg.eval.everyEpochs}`, `--out ${cfg.out}`];
  if (cfg.objective === 'ce') parts.push('--objective ce');
  if (cfg.loss.supervisedCe === 0) parts.push('--supervised-ce 0');
  if (cfg.init) parts.push(`--init ${cfg.init}`);
  if (opts.seed) parts.push(`--seed ${opts.seed}`);
  return parts.join(' ');
}

interface Results {
  adapter: string;
  crops: number;
  episodes: number;
  seconds: number;
  armSeconds: Record<string, number>;
  rows: DemoRow[];
  curve: CurvePoint[];
  pixelsVal: number;
}

async function runStudy(): Promise<Results> {
  const t0 = performance.now();
  const splits = await openSplits(base.data, opts.seed);
  const fresh = modelsFor(base, splits.train.classes.length);
  const rows: DemoRow[] = [...(await testRows('random init', null, fresh, base, splits)), ...(await testRows('raw pixels', null, null, base, splits))];
  const { random: randomVal, pixels: pixelsVal } = await validationBaselines(fresh, base, splits);
  fresh.dispose();
  const armSeconds: Record<string, number> = {};
  const curve: CurvePoint[] = [];
  for (const arm of arms) {
    const a0 = performance.now();
    let offset = 0;
    curve.push({ x: 0, y: randomVal, series: arm.label });
    for (const cfg of arm.configs) {
      const r = await runTraining(cfg, `${arm.name} phase ${cfg.phase}`);
      curve.push(...(await validationCurve(cfg, arm.label, offset)));
      offset += cfg.schedule.epochs * cfg.schedule.itersPerEpoch * cropsPerIter;
      if (cfg === arm.configs[arm.configs.length - 1]) rows.push(...(await testRows(arm.label, r.lastCheckpoint, r.models, cfg, r.splits)));
      r.models.dispose();
    }
    armSeconds[arm.label] = (performance.now() - a0) / 1000;
    console.log(formatRows(rows));
  }
  const results = {
    adapter: adapterName((await getGpu()).info),
    crops: opts.crops,
    episodes: opts.episodes,
    seconds: (performance.now() - t0) / 1000,
    armSeconds,
    rows,
    curve,
    pixelsVal,
  };
  await mkdir(opts.out, { recursive: true });
  await writeFile(resultsFile, JSON.stringify(results, null, 2));
  return results;
}

const resultsFile = path.join(opts.out, 'results.json');
const { adapter, seconds: total, armSeconds: seconds, rows, curve, pixelsVal } = opts.reportOnly ? (JSON.parse(await readFile(resultsFile, 'utf8')) as Results) : await runStudy();
const svg = await lineChartSvg(curve, {
  title: `Omniglot, validation alphabet: 5-way 1-shot accuracy against crops seen`,
  xTitle: 'augmented crops seen',
  yTitle: 'accuracy (%)',
  rules: [{ y: pixelsVal, label: `raw pixels ${pixelsVal.toFixed(1)} %` }],
});
const docDir = path.dirname(opts.doc);
await mkdir(docDir, { recursive: true });
const svgFile = path.join(docDir, 'results-omniglot-curves.svg');
await writeFile(svgFile, svg);

const settings = [...new Set(rows.map((r) => `${r.ways}-way ${r.shots}-shot`))];
const models = [...new Set(rows.map((r) => r.model))];
const cell = (m: string, s: string): string => {
  const r = rows.find((x) => x.model === m && `${x.ways}-way ${x.shots}-shot` === s);
  return r ? `${r.mean.toFixed(2)} ± ${r.ci95.toFixed(2)}` : '-';
};
const table = [
  `| Backbone | ${settings.join(' | ')} | Wall time |`,
  `|---|${settings.map(() => '---').join('|')}|---|`,
  ...models.map((m) => `| ${m} | ${settings.map((s) => cell(m, s)).join(' | ')} | ${seconds[m] ? `${seconds[m].toFixed(0)} s` : ''} |`),
].join('\n');
const md = `<!-- generated by scripts/omniglot-study.ts; the findings section below the marker is written by hand -->
# Omniglot study: cross-entropy, iBOT, SMKD and the recipe at the same budget

Data: the packed Omniglot subset (\`data/omniglot\`, 28 px, bright strokes), split by alphabet: 4 alphabets
train (133 characters), Greek validates, Latin, Sanskrit and Tagalog test (85 characters, never used to
choose anything). Every method sees **${opts.crops.toLocaleString('en-US')} augmented crops** (the \`omniglot\` preset:
ViT 64-d, depth 4, patch 14, batch ${base.batch.size}, stroke augmentation; phase 2 takes ${Math.round(opts.phase2Share * 100)} % of the
crops where there are two phases), seed ${opts.seed}. Test: teacher backbone, \`${base.eval.features}\` features, prototype
classifier, ${opts.episodes} episodes per setting, 15 queries per class, mean ± 95 % interval, the same episodes
for every row. Adapter: ${adapter}. Total wall time ${(total / 60).toFixed(1)} min.

${table}

![validation accuracy against crops seen](${path.basename(svgFile)})

Reproduce: \`npx tsx scripts/omniglot-study.ts --crops ${opts.crops} --episodes ${opts.episodes}${opts.seed ? ` --seed ${opts.seed}` : ''}\`, which runs:

\`\`\`sh
${arms.flatMap((a) => a.configs.map(command)).join('\n')}
\`\`\`

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
